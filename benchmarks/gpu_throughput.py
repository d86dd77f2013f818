"""GPU throughput of the toolkit's step by precision and layout, and the penalty under bf16.

    python benchmarks/gpu_throughput.py --out docs/results/gpu_throughput

On one CUDA device (``--device cpu`` runs the same arms on the CPU, as a smoke test): a 32x32
RGB DCGAN (G and D 64 wide, batch 256, CIFAR-10's shapes on random images, so no download)
trained by ``GANModule`` in a ``pl.Trainer``, one fit per arm:

* **precision**: ``32-true``, ``bf16-mixed`` and ``16-mixed`` (fp16 with loss scaling), each
  with and without R1 (gamma 10, lazily every 4 D steps, D without BatchNorm);
* **layout and compilation** at ``32-true`` and ``bf16-mixed``: ``model.channels_last`` and
  ``model.compile`` (no penalty: torch.compile cannot differentiate twice).

Each arm runs ``--warmup`` untimed iterations (compilation included), then ``--steps`` timed
ones between two ``torch.cuda.synchronize()``; the table gives images per second (real and
fake images D sees per second: 2 x batch x iterations / s) and the ratio to ``32-true``.

**The penalty under mixed precision**: R1 of the same D on the same real batch, computed under
bf16 (and fp16) autocast and in plain fp32, on the device: ``gradient_penalty`` runs its pass
with autocast off, so the values must agree to fp32 rounding (the relative difference is
printed; a naive bf16 pass was off by 0.2 % on the CPU).
Writes ``OUT.md`` and ``OUT.json`` and prints each arm's throughput.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gan_tricks.functional import gradient_penalty  # noqa: E402
from gan_tricks.functional.latent import Latent  # noqa: E402
from gan_tricks.lightning import GANModule  # noqa: E402
from gan_tricks.models import DCGANDiscriminator, DCGANGenerator  # noqa: E402
from gan_tricks.tricks import GradientPenalty  # noqa: E402

IMAGE_SIZE, CHANNELS, WIDTH, LATENT_DIM = 32, 3, 64, 128
R1_GAMMA, R1_EVERY = 10.0, 4


def arms(device: str) -> dict[str, tuple[str, bool, dict[str, bool]]]:
    """Arm name -> (precision, R1 on, module options); no fp16 on the CPU (Lightning would
    run bf16 instead)."""
    table: dict[str, tuple[str, bool, dict[str, bool]]] = {}
    precisions = (
        ("32-true", "bf16-mixed") if device == "cpu" else ("32-true", "bf16-mixed", "16-mixed")
    )
    for precision in precisions:
        table[precision] = (precision, False, {})
        table[f"{precision} + R1 every {R1_EVERY}"] = (precision, True, {})
    for precision in ("32-true", "bf16-mixed"):
        table[f"{precision} + channels_last"] = (precision, False, {"channels_last": True})
        table[f"{precision} + compile"] = (precision, False, {"compile": True})
    return table


class SynchronizedClock(pl.Callback):
    """Wall time of the iterations after ``warmup``, the device's queue drained at both ends."""

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.started: float | None = None
        self.seconds: float | None = None

    def _now(self, module: pl.LightningModule) -> float:
        if module.device.type == "cuda":
            torch.cuda.synchronize(module.device)
        return time.perf_counter()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.warmup:
            self.started = self._now(pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        if self.started is not None:
            self.seconds = self._now(pl_module) - self.started


def networks(penalty: bool) -> tuple[DCGANGenerator, DCGANDiscriminator]:
    generator = DCGANGenerator(LATENT_DIM, IMAGE_SIZE, CHANNELS, WIDTH)
    discriminator = DCGANDiscriminator(
        IMAGE_SIZE, CHANNELS, WIDTH, norm="none" if penalty else "batch"
    )
    return generator, discriminator


def random_images(batch: int, batches: int) -> DataLoader:
    images = torch.rand(batch * batches, CHANNELS, IMAGE_SIZE, IMAGE_SIZE) * 2 - 1
    return DataLoader(TensorDataset(images), batch_size=batch, drop_last=True, pin_memory=True)


def images_per_second(
    arm: tuple[str, bool, dict[str, bool]], device: str, batch: int, steps: int, warmup: int
) -> float:
    precision, penalty, options = arm
    torch.manual_seed(0)
    generator, discriminator = networks(penalty)
    module = GANModule(
        generator,
        discriminator,
        latent=Latent(LATENT_DIM),
        g_optimizer=lambda params: torch.optim.Adam(params, lr=2e-4, betas=(0.5, 0.999)),
        d_optimizer=lambda params: torch.optim.Adam(params, lr=2e-4, betas=(0.5, 0.999)),
        tricks=[GradientPenalty(kind="r1", weight=R1_GAMMA, every=R1_EVERY)] if penalty else [],
        **options,
    )
    clock = SynchronizedClock(warmup)
    with tempfile.TemporaryDirectory() as folder:
        trainer = pl.Trainer(
            accelerator="gpu" if device == "cuda" else "cpu",
            devices=1,
            precision=precision,
            max_steps=warmup + steps,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            default_root_dir=folder,
            callbacks=[clock],
        )
        trainer.fit(module, train_dataloaders=random_images(batch, warmup + steps))
    assert clock.seconds is not None
    return 2 * batch * steps / clock.seconds


def penalty_under_autocast(device: str) -> dict[str, float]:
    """Relative difference of R1 under bf16 / fp16 autocast from the fp32 R1, on ``device``."""
    torch.manual_seed(0)
    _, critic = networks(penalty=True)
    critic = critic.to(device)
    real = torch.rand(64, CHANNELS, IMAGE_SIZE, IMAGE_SIZE, device=device) * 2 - 1
    exact = gradient_penalty(critic, real, kind="r1").detach()
    differences = {}
    dtypes = {"bf16": torch.bfloat16, "fp16": torch.float16}
    if device == "cpu":
        dtypes.pop("fp16")  # CPU autocast: bf16 only
    for name, dtype in dtypes.items():
        with torch.autocast(device, dtype=dtype):
            mixed = gradient_penalty(critic, real, kind="r1").detach()
        differences[name] = ((mixed.float() - exact).abs() / exact.abs()).item()
    return differences


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--arms", default=None, help="comma-separated subset of the arms")
    parser.add_argument("--out", default="docs/results/gpu_throughput")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("No CUDA device is visible; run this on a GPU machine (or pass --device cpu).")
        return 2
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else "CPU (smoke test)"
    chosen = arms(args.device)
    if args.arms:
        chosen = {name: chosen[name] for name in args.arms.split(",")}
    results = {}
    for name, arm in chosen.items():
        results[name] = images_per_second(arm, args.device, args.batch, args.steps, args.warmup)
        print(f"{name}: {results[name]:,.0f} images / s", flush=True)
    penalty = penalty_under_autocast(args.device)
    print(f"R1 under autocast, relative difference from fp32: {penalty}")
    write_report(device_name, results, penalty, args)
    return 0


def write_report(
    device_name: str,
    results: dict[str, float],
    penalty: dict[str, float],
    args: argparse.Namespace,
) -> None:
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "device": device_name,
        "torch": torch.__version__,
        "batch": args.batch,
        "steps": args.steps,
        "images_per_second": results,
        "r1_relative_difference_under_autocast": penalty,
    }
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    base = results.get("32-true")
    lines = [
        f"# Toolkit throughput by precision and layout ({device_name})",
        "",
        f"Made by `python benchmarks/gpu_throughput.py --device {args.device} --batch "
        f"{args.batch} --steps {args.steps} --out {args.out}` with torch {torch.__version__}: "
        f"a 32x32 RGB DCGAN (64 wide) at batch {args.batch}, {args.steps} timed iterations "
        f"after {args.warmup}; images per second that D sees (real and fake).",
        "",
        "| arm | images / s | vs 32-true |",
        "|---|---|---|",
    ]
    for name, rate in results.items():
        ratio = f"{rate / base:.2f}x" if base else "-"
        lines.append(f"| {name} | {rate:,.0f} | {ratio} |")
    lines += [
        "",
        "R1 under autocast, relative difference from the fp32 R1 (gamma-free value): "
        + ", ".join(f"{name} {value:.1e}" for name, value in penalty.items()),
    ]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
