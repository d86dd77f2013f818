"""The toolkit's step against a hand-written PyTorch loop doing the same maths, in one process.

    python benchmarks/step_overhead.py --steps 300 --rounds 5 --out docs/results/step_overhead

For the digits DCGAN recipe (``recipes/digits.yaml``: 16x16, batch 64, Adam 2e-4) and four
settings, (a) no trick, (b) a gradient penalty (R1, gamma 10, every step; D without BatchNorm,
which a gradient penalty needs), (c) spectral norm on D, (d) all eight failure detectors
(``benchmarks/overlays/monitors/all_detectors.yaml``), both arms train the same networks on the
same images:

* **toolkit**: ``GANModule`` in a ``pl.Trainer`` with the recipe's logging (a CSV logger every 20
  iterations), no checkpoints or progress bar; the trick as its ``Trick`` callback.
* **hand-written**: a plain loop over a shuffled ``DataLoader``: the D step (G's fakes under
  ``no_grad``, D on the real and the fake batch, the non-saturating loss, Adam), then the G
  step with D frozen (``requires_grad_(False)``, as careful loops do), the penalty or spectral
  norm written out with torch (``autograd.grad``, ``torch.nn.utils.parametrizations``); for (d)
  the detectors' maths called from the loop (``HandWrittenLoop``: their functions and
  ``Detector.observe``, the API for loops without Lightning). What the detectors cost in
  themselves is ``benchmarks/detector_overhead.py``'s measure; (d) is also timed against the
  loop without them (``all_detectors_vs_plain_loop``), in the same run.

The two arms run in lockstep in one process (``Lockstep``): after every toolkit iteration, one
hand-written iteration, each timed on its own (the next batch included), so both see the same
machine from one millisecond to the next; separate runs of the same arm differ by up to 10 %
on this machine, more than the effect measured. The first ``--warmup`` iterations are left out;
the ratio of a round is toolkit / hand-written mean time per iteration, and the result is the
median over ``--rounds`` rounds (a fresh fit each). One thread (``torch.set_num_threads(1)``),
flush-to-zero for denormals in both arms.
Writes ``OUT.md`` and ``OUT.json`` and prints the ratios.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
import yaml
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gan_tricks.data import Digits  # noqa: E402
from gan_tricks.engine import GANEngine  # noqa: E402
from gan_tricks.functional import drop_nonfinite_gradients  # noqa: E402
from gan_tricks.functional.latent import Latent  # noqa: E402
from gan_tricks.history import MetricsLogger  # noqa: E402
from gan_tricks.lightning import GANModule  # noqa: E402
from gan_tricks.models import DCGANDiscriminator, DCGANGenerator  # noqa: E402
from gan_tricks.monitors import (  # noqa: E402
    DiscriminatorOverfitting,
    GeneratorFoolingWithGarbage,
    ModeCollapse,
    NonFinite,
    SpectralCollapse,
    diversity_signals,
    moment_gap,
    sign_mean,
    spectral_spread,
    weight_matrices,
)
from gan_tricks.monitors.base import Detector  # noqa: E402
from gan_tricks.tricks import GradientPenalty, SpectralNorm, Trick  # noqa: E402

SETTINGS = ("none", "gradient_penalty", "spectral_norm", "all_detectors")
LATENT_DIM = 64
BATCH = 64
LR, BETAS = 2e-4, (0.5, 0.999)
R1_GAMMA = 10.0
DETECTORS = ROOT / "benchmarks" / "overlays" / "monitors" / "all_detectors.yaml"


def networks(setting: str) -> tuple[nn.Module, nn.Module]:
    """The digits recipe's G and D (D without BatchNorm for the gradient penalty, or when the
    setting is ``plain_d``: the same networks without the penalty)."""
    d_norm = "none" if setting in ("gradient_penalty", "plain_d") else "batch"
    generator = DCGANGenerator(latent_dim=LATENT_DIM, image_size=16, channels=1, width=32)
    discriminator = DCGANDiscriminator(image_size=16, channels=1, width=32, norm=d_norm)
    return generator, discriminator


def all_detectors() -> list[Detector]:
    """The detectors of ``benchmarks/overlays/monitors/all_detectors.yaml``, built."""
    import importlib

    overlay = yaml.safe_load(DETECTORS.read_text())
    detectors = []
    for spec in overlay["model"]["detectors+"]:
        module_name, _, class_name = spec["class_path"].rpartition(".")
        cls = getattr(importlib.import_module(module_name), class_name)
        detectors.append(cls(**spec.get("init_args", {})))
    return detectors


def setting_tricks(setting: str) -> list[Trick]:
    if setting == "gradient_penalty":
        return [GradientPenalty(kind="r1", weight=R1_GAMMA)]
    if setting == "spectral_norm":
        return [SpectralNorm(discriminator=True)]
    return []


class StepClock(pl.Callback):
    def __init__(self) -> None:
        self.starts: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.starts.append(time.perf_counter())

    def on_train_end(self, trainer, pl_module) -> None:
        self.starts.append(time.perf_counter())


def mean_step(starts: list[float], warmup: int) -> float:
    times = [b - a for a, b in itertools.pairwise(starts)][warmup:]
    return statistics.fmean(times)


def toolkit_run(
    setting: str,
    steps: int,
    warmup: int,
    folder: Path,
    extra_tricks: tuple[Trick, ...] = (),
    lockstep: bool = False,
    **module_options: object,
) -> tuple[float, list[float]]:
    """Mean seconds per iteration of the toolkit (``module_options`` passed to GANModule) and,
    with ``lockstep``, of each hand-written loop run between its iterations (see
    ``hand_written_arms``; none without ``lockstep``)."""
    generator, discriminator = networks(setting)
    module = GANModule(
        generator,
        discriminator,
        latent=Latent(LATENT_DIM),
        g_optimizer=lambda p: torch.optim.Adam(p, lr=LR, betas=BETAS),
        d_optimizer=lambda p: torch.optim.Adam(p, lr=LR, betas=BETAS),
        tricks=[*setting_tricks(setting), *extra_tricks],
        detectors=all_detectors() if setting == "all_detectors" else [],
        **module_options,
    )
    data = digits_data(setting)
    clock = StepClock()
    callbacks: list[pl.Callback] = [clock]
    pair = Lockstep(*hand_written_arms(setting)) if lockstep else None
    if pair is not None:
        callbacks.append(pair)  # last: after every detector's hook
    trainer = pl.Trainer(
        max_steps=warmup + steps,
        accelerator="cpu",
        logger=MetricsLogger(folder),  # what gan-tricks fit logs with
        log_every_n_steps=20,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=callbacks,
    )
    trainer.fit(module, datamodule=data)
    if pair is None:
        return mean_step(clock.starts, warmup), []
    hands = [statistics.fmean(times[warmup:]) for times in pair.hand_times]
    return statistics.fmean(pair.toolkit[warmup:]), hands


def digits_data(setting: str) -> Digits:
    holdout = 0.1 if setting == "all_detectors" else 0.0  # DiscriminatorOverfitting's held-out set
    return Digits(image_size=16, batch_size=BATCH, holdout=holdout)


def hand_written_arms(setting: str) -> list:
    """The loops a setting is timed against: first the hand-written one doing the same maths,
    then the same loop driving ``GANEngine`` (the engine in a user's own loop); for
    ``all_detectors`` also a loop without the detectors, for the whole cost of having them."""
    arms: list = [HandWrittenLoop(setting, detectors=setting == "all_detectors")]
    arms.append(EngineLoop(setting))
    if setting == "all_detectors":
        arms.append(HandWrittenLoop(setting))
    return arms


class EngineLoop:
    """A user's own loop around ``GANEngine``: its own networks, optimizers and loader, the
    setting's trick or detectors, one ``engine.step(real)`` per iteration."""

    def __init__(self, setting: str) -> None:
        generator, discriminator = networks(setting)
        images = Digits(image_size=16, batch_size=BATCH).images
        self.loader = DataLoader(
            TensorDataset(images), batch_size=BATCH, shuffle=True, drop_last=True
        )
        self.batches = iter(self.loader)
        self.engine = GANEngine(
            generator,
            discriminator,
            lambda p: torch.optim.Adam(p, lr=LR, betas=BETAS),
            lambda p: torch.optim.Adam(p, lr=LR, betas=BETAS),
            latent=Latent(LATENT_DIM),
            tricks=setting_tricks(setting),
            detectors=all_detectors() if setting == "all_detectors" else [],
            data=digits_data(setting),
        )

    def step(self) -> None:
        try:
            (real,) = next(self.batches)
        except StopIteration:
            self.batches = iter(self.loader)
            (real,) = next(self.batches)
        self.engine.step(real, logging_step=False)


class HandWrittenLoop:
    """The hand-written arm: its own networks, optimizers and loader; one iteration per call.

    With ``detectors``, the loop also does the detectors' maths the way a hand-written loop
    would, through their functions and ``Detector.observe`` (the API for loops without
    Lightning): both networks' total gradient norms and the non-finite check before every
    step, the diversity, moment-gap, held-out and spectral measurements at each detector's
    own interval, and every detector's ``observe`` with the iteration's signals.
    """

    def __init__(self, setting: str, detectors: bool = False) -> None:
        self.setting = setting
        self.generator, self.discriminator = networks(setting)
        if setting == "spectral_norm":
            for layer in self.discriminator.modules():
                if isinstance(layer, nn.Conv2d):
                    torch.nn.utils.parametrizations.spectral_norm(layer)
        images = Digits(image_size=16, batch_size=BATCH).images
        self.loader = DataLoader(
            TensorDataset(images), batch_size=BATCH, shuffle=True, drop_last=True
        )
        self.batches = iter(self.loader)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=LR, betas=BETAS)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=LR, betas=BETAS)
        self.detectors = all_detectors() if detectors else []
        self.iteration = 0
        overfitting = self._detector(DiscriminatorOverfitting)
        if overfitting is not None:
            held = Digits(image_size=16, batch_size=BATCH, holdout=0.1)
            self.heldout = held.heldout_samples(overfitting.samples, seed=0)

    def _detector(self, kind: type) -> object | None:
        return next((d for d in self.detectors if isinstance(d, kind)), None)

    def _before_step(self, network: nn.Module, optimizer: torch.optim.Optimizer) -> float:
        """The detectors' work between a backward and its step: the gradient norm (read every
        iteration by GradientPathology) and NonFinite's check."""
        grads = [p.grad for p in network.parameters() if p.grad is not None]
        norm = float(torch.nn.utils.get_total_norm(grads))
        if self._detector(NonFinite) is not None:
            drop_nonfinite_gradients(optimizer)
        return norm

    def step(self) -> None:
        generator, discriminator = self.generator, self.discriminator
        try:
            (real,) = next(self.batches)
        except StopIteration:
            self.batches = iter(self.loader)
            (real,) = next(self.batches)
        # D step
        with torch.no_grad():
            fake = generator(torch.randn(len(real), LATENT_DIM))
        real_logits, fake_logits = discriminator(real), discriminator(fake)
        loss_d = F.binary_cross_entropy_with_logits(
            real_logits, torch.ones_like(real_logits)
        ) + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
        if self.setting == "gradient_penalty":  # R1: gamma / 2 * E||grad_x D(x)||^2 on reals
            points = real.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(discriminator(points).sum(), points, create_graph=True)
            loss_d = loss_d + R1_GAMMA / 2 * grad.pow(2).flatten(1).sum(1).mean()
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        d_grad_norm = self._before_step(discriminator, self.opt_d) if self.detectors else None
        self.opt_d.step()
        # G step, D frozen
        discriminator.requires_grad_(False)
        fake = generator(torch.randn(len(real), LATENT_DIM))
        loss_g = F.softplus(-discriminator(fake)).mean()
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        g_grad_norm = self._before_step(generator, self.opt_g) if self.detectors else None
        self.opt_g.step()
        discriminator.requires_grad_(True)
        self.iteration += 1
        if self.detectors:
            signals = {
                "d_loss": float(loss_d), "g_loss": float(loss_g),
                "d_real": float(real_logits.mean()), "d_fake": float(fake_logits.mean()),
                "d_grad_norm": d_grad_norm, "g_grad_norm": g_grad_norm, "d_steps": 1.0,
            }  # fmt: skip
            for detector in self.detectors:
                detector.observe(self.iteration, {**signals, **self._measure(detector, fake, real)})

    def _measure(self, detector, fake: torch.Tensor, real: torch.Tensor) -> dict[str, float]:
        """What ``detector`` measures beyond the signals at this iteration, as its ``measure``
        does in a Lightning run."""
        every = getattr(detector, "every", 1)
        if self.iteration % every:
            return {}
        if isinstance(detector, ModeCollapse):
            return diversity_signals(fake, real)
        if isinstance(detector, GeneratorFoolingWithGarbage):
            return {"moment_gap": moment_gap(fake, real)}
        if isinstance(detector, DiscriminatorOverfitting):
            count = min(len(real), len(self.heldout))
            self.discriminator.eval()
            with torch.no_grad():
                r_train = sign_mean(self.discriminator(real[:count]))
                r_heldout = sign_mean(self.discriminator(self.heldout[:count]))
            self.discriminator.train()
            return {"r_train": r_train, "r_heldout": r_heldout}
        if isinstance(detector, SpectralCollapse):
            return {
                f"spectral_spread/{name}": spectral_spread(matrix, detector.top)
                for name, matrix in weight_matrices(self.discriminator).items()
                if min(matrix.shape) >= 2
            }
        return {}


class Lockstep(pl.Callback):
    """Runs one iteration of each hand-written loop after every toolkit iteration, timing all.

    The toolkit's iteration is the wall time from one ``on_train_batch_start`` to the next
    (its next batch, its step and every other callback), less the hand-written iterations run
    in between; each hand-written one is timed around its call (its next batch included). So
    the arms alternate every few tens of milliseconds and share the machine's state of the
    moment: separate runs of the same arm differ by up to 10 % on this machine.
    """

    def __init__(self, *hands: HandWrittenLoop) -> None:
        self.hands = hands
        self.toolkit: list[float] = []
        self.hand_times: list[list[float]] = [[] for _ in hands]
        self._start: float | None = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        now = time.perf_counter()
        if self._start is not None:
            self.toolkit.append(now - self._start - sum(times[-1] for times in self.hand_times))
        self._start = now

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        # Two hand-written loops take turns at going first: the one right after the toolkit
        # finds the caches as the toolkit left them.
        order = list(zip(self.hands, self.hand_times, strict=True))
        for hand, times in order if len(self.toolkit) % 2 == 0 else order[::-1]:
            begin = time.perf_counter()
            hand.step()
            times.append(time.perf_counter() - begin)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="timed iterations per run")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--settings", default=",".join(SETTINGS))
    parser.add_argument("--out", default="docs/results/step_overhead")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    pl.seed_everything(0, verbose=False)
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for setting in args.settings.split(","):
            toolkit, hands = [], []
            for _ in range(args.rounds):
                mine, theirs = toolkit_run(
                    setting, args.steps, args.warmup, Path(scratch), lockstep=True
                )
                toolkit.append(mine)
                hands.append(theirs)
            ratios = [t / h[0] for t, h in zip(toolkit, hands)]
            results[setting] = {
                "ratio": statistics.median(ratios),
                "ratios": ratios,
                "toolkit_ms": [1000 * t for t in toolkit],
                "hand_ms": [1000 * h[0] for h in hands],
            }
            engine = [h[1] / h[0] for h in hands]
            results[setting + "_engine_loop"] = {
                "ratio": statistics.median(engine),
                "ratios": engine,
                "toolkit_ms": [1000 * h[1] for h in hands],
                "hand_ms": [1000 * h[0] for h in hands],
            }
            fit_ratio = results[setting]["ratio"]
            print(f"{setting}: gan-tricks fit step / hand-written = {fit_ratio:.3f}, "
                  f"engine in a hand-written loop / hand-written = {statistics.median(engine):.3f} "
                  f"(rounds {', '.join(f'{r:.3f}' for r in ratios)}; "
                  f"{', '.join(f'{r:.3f}' for r in engine)})", flush=True)  # fmt: skip
            if len(hands[0]) > 2:  # the same toolkit runs against a loop without the detectors
                plain = [t / h[2] for t, h in zip(toolkit, hands)]
                results[setting + "_vs_plain_loop"] = {
                    "ratio": statistics.median(plain),
                    "ratios": plain,
                    "toolkit_ms": [1000 * t for t in toolkit],
                    "hand_ms": [1000 * h[2] for h in hands],
                }
                print(f"{setting} against a loop without them = {statistics.median(plain):.3f}")
    write_report(results, args)
    return 0


def write_report(results: dict[str, dict], args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    command = (
        f"python benchmarks/step_overhead.py --steps {args.steps} --warmup {args.warmup} "
        f"--rounds {args.rounds} --out {args.out}"
    )
    lines = [
        "# The toolkit's step against a hand-written loop (digits DCGAN)",
        "",
        f"Made by `{command}` on a 2-core CPU (one thread). Per round: one `GANModule` fit "
        f"of {args.steps} timed iterations (after {args.warmup} untimed) with, after each of "
        "its iterations, one iteration of a hand-written torch loop and one of the same loop "
        "driving `GANEngine` (lockstep, same process). A plain row is the `GANModule` "
        "(Lightning, public API only) over the hand-written loop: target <= 1.05. An "
        "`_engine_loop` row is the engine in a hand-written loop over the loop written with "
        "torch alone: target <= 1.02. Median over rounds. For all_detectors the hand-written "
        "loop does the detectors' maths itself (their functions and `Detector.observe`); "
        "all_detectors_vs_plain_loop divides the same `GANModule` runs by a loop without "
        "detectors (what having them costs in all).",
        "",
        "| setting | ratio (median) | rounds | ms / step | hand-written ms / step |",
        "|---|---|---|---|---|",
    ]
    for setting, result in results.items():
        rounds = ", ".join(f"{r:.3f}" for r in result["ratios"])
        lines.append(
            f"| {setting} | **{result['ratio']:.3f}** | {rounds} | "
            f"{statistics.median(result['toolkit_ms']):.2f} | "
            f"{statistics.median(result['hand_ms']):.2f} |"
        )
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
