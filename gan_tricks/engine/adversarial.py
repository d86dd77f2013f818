"""GANEngine: the adversarial iteration, written once, for any training loop."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from gan_tricks import distributed
from gan_tricks.engine.context import (
    DataSpec,
    NetworkHolder,
    Networks,
    Phase,
    StepContext,
)
from gan_tricks.engine.random_states import random_states, set_random_states
from gan_tricks.engine.recorder import RunRecorder
from gan_tricks.engine.signals import D_PENALTY_PREFIX, G_PENALTY_PREFIX, StepSignals
from gan_tricks.errors import ConfigError
from gan_tricks.functional.latent import Latent
from gan_tricks.functional.losses import (
    DISCRIMINATOR_REDUCTIONS,
    LossName,
    combine_discriminator_losses,
    get_loss,
)
from gan_tricks.tricks.base import Trick

if TYPE_CHECKING:
    from gan_tricks.monitors.base import Alarm, Detector

OptimizerOrFactory = torch.optim.Optimizer | Callable[[Iterable[nn.Parameter]], Any]


def unique_names(objects: Sequence[object]) -> dict[str, Any]:
    """Each object's name in signals, logs and checkpoints: its class name, numbered when a
    class repeats (two ``GradientPenalty`` tricks, R1 and R2, become ``GradientPenalty`` and
    ``GradientPenalty_2``, so neither term is lost)."""
    names: dict[str, Any] = {}
    for obj in objects:
        base = type(obj).__name__
        name, index = base, 1
        while name in names:
            index += 1
            name = f"{base}_{index}"
        names[name] = obj
    return names


def flat_logits(logits: Tensor) -> Tensor:
    """D's output as (N,) logits, or (N, k) for k discriminators."""
    return logits.reshape(len(logits), -1).squeeze(1) if logits.dim() > 1 else logits


def gradient_norm(parameters: Iterable[nn.Parameter]) -> Tensor:
    """Total L2 norm of the gradients of ``parameters`` (0 when none has one)."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.nn.utils.get_total_norm(grads)


class GANEngine:
    """One GAN training iteration over your own G, D and optimizers, with tricks and detectors.

    ``engine.step(real)`` runs an iteration: the D steps (``n_critic``, or more when a trick
    asks), each on fresh fakes with the tricks' transforms, targets and penalties, then the G
    step, then the tricks' and detectors' observation of the step's
    :class:`~gan_tricks.engine.StepSignals`, which it returns. A detector's action happens
    there: ``stop`` sets :attr:`should_stop`, ``rollback`` restores the networks and
    optimizers of a healthy moment, ``remediate`` changes the run. A loop that keeps its own
    adversarial step calls :meth:`report` with its signals instead.

    ``engine.state_dict()`` holds everything the run's future depends on (networks,
    optimizers, schedulers, tricks, detectors, the latent generator and the global random
    generators), so ``torch.save(engine.state_dict(), path)`` and ``load_state_dict`` resume
    bit for bit.

    Args:
        generator: maps latent codes (N, latent.dim) to samples shaped like the data.
        discriminator: maps samples to one logit each, shape (N,) or (N, 1); (N, k) for an
            ensemble of k discriminators.
        g_optimizer: G's optimizer, or a factory called with G's parameters once the tricks
            changed the networks' structure (spectral norm). May be given later
            (:meth:`attach_optimizers`).
        d_optimizer: the same for D.
        loss: one of ``gan_tricks.functional.LOSSES``.
        latent: dimension and distribution of z.
        tricks: the tricks, in any order (each has its place in the step, ``Trick.order``).
        detectors: the failure detectors.
        n_critic: D steps per G step before any trick asks for more.
        separate_batches: D sees real-only and fake-only batches (ganhacks #4); False feeds one
            mixed batch.
        d_reduction: how G's losses against several discriminators combine: ``mean``, ``max``
            or ``softmax`` (GMAN, Durugkar et al. 2017).
        d_softmax_temperature: the softmax reduction's temperature.
        schedulers: learning-rate schedulers stepped once per iteration.
        max_steps: the run's length in iterations, for tricks that anneal over the run.
        data: the data's ``sample_shape`` and ``kind`` (a data module), for the tricks'
            compatibility checks; None skips the checks that need it.
        seed: the seed of the latent codes' own generator.
        gradient_norms: compute both gradient norms on every step (True), never (False), or
            only when a detector reads them (None).
        channels_last: keep image batches in the NHWC memory layout.
        networks: a module already holding ``generator`` and ``discriminator`` (the Lightning
            adapter passes itself, so checkpoints keep their keys); instead of the two.
        recorder: a :class:`~gan_tricks.engine.RunRecorder` that writes the run folder: every
            step is logged to it, every alarm goes to it, and :meth:`close` draws the pictures.
    """

    def __init__(
        self,
        generator: nn.Module | None = None,
        discriminator: nn.Module | None = None,
        g_optimizer: OptimizerOrFactory | None = None,
        d_optimizer: OptimizerOrFactory | None = None,
        *,
        loss: LossName = "nonsaturating",
        latent: Latent | None = None,
        tricks: Sequence[Trick] = (),
        detectors: Sequence[Detector] = (),
        n_critic: int = 1,
        separate_batches: bool = True,
        d_reduction: str = "mean",
        d_softmax_temperature: float = 1.0,
        schedulers: Sequence[Any] = (),
        max_steps: int | None = None,
        data: DataSpec | None = None,
        seed: int = 0,
        gradient_norms: bool | None = None,
        channels_last: bool = False,
        networks: NetworkHolder | None = None,
        recorder: RunRecorder | None = None,
    ) -> None:
        if networks is None:
            if generator is None or discriminator is None:
                raise ConfigError("GANEngine needs a generator and a discriminator.")
            networks = Networks(generator, discriminator)
        if n_critic < 1:
            raise ConfigError(f"n_critic must be at least 1 (got {n_critic}).")
        if d_reduction not in DISCRIMINATOR_REDUCTIONS:
            raise ConfigError(
                f"d_reduction must be one of {', '.join(DISCRIMINATOR_REDUCTIONS)} "
                f"(got {d_reduction!r})."
            )
        if d_softmax_temperature <= 0:
            raise ConfigError(f"d_softmax_temperature must be > 0 (got {d_softmax_temperature}).")
        for name, group in (("tricks", tricks), ("detectors", detectors)):
            if isinstance(group, Trick) or not isinstance(group, Sequence):
                raise ConfigError(f"{name} must be a list (got {type(group).__name__}).")
        self.networks = networks
        self.latent = latent if latent is not None else Latent()
        self.loss = get_loss(loss)
        self.n_critic = n_critic
        self.separate_batches = separate_batches
        self.d_reduction = d_reduction
        self.d_softmax_temperature = d_softmax_temperature
        self.channels_last = channels_last
        self.gradient_norms = gradient_norms
        self.latent_seed = seed
        self.iteration = 0
        self.should_stop = False
        self.tricks: list[Trick] = sorted(tricks, key=lambda trick: trick.order)
        self.detectors: list[Detector] = list(detectors)
        self.schedulers: list[Any] = list(schedulers)
        self.g_optimizer: torch.optim.Optimizer | None = None
        self.d_optimizer: torch.optim.Optimizer | None = None
        # Called with every alarm, after its action: the console, a run folder, W&B.
        self.alarm_handlers: list[Callable[[Alarm], None]] = []
        # How a loss is differentiated and an optimizer stepped: plain torch unless a
        # framework routes them (Lightning's precision plugins and step counting).
        self.backward: Callable[[Tensor], None] = Tensor.backward
        self.optimizer_step: Callable[[torch.optim.Optimizer, Phase], None] = _plain_step
        self.context = StepContext(
            networks=networks,
            latent=self.latent,
            loss=self.loss,
            n_critic=n_critic,
            max_steps=max_steps,
            data=data,
            judge=self.judge,
        )
        self.latent_generator: torch.Generator | None = None
        self._latent_generator_state: Tensor | None = None
        self._pending_random_states: dict[str, Any] | None = None
        self._penalty_names: set[str] = set()
        self._started = False
        self.recorder = recorder
        if recorder is not None:
            recorder.attach(self)
        self.configure_networks()
        self.attach_optimizers(g_optimizer, d_optimizer)

    # ------------------------------------------------------------------ set-up
    @property
    def generator(self) -> nn.Module:
        return self.networks.generator

    @property
    def discriminator(self) -> nn.Module:
        return self.networks.discriminator

    @property
    def max_steps(self) -> int | None:
        return self.context.max_steps

    @max_steps.setter
    def max_steps(self, value: int | None) -> None:
        self.context.max_steps = value

    @property
    def data(self) -> DataSpec | None:
        return self.context.data

    @data.setter
    def data(self, value: DataSpec | None) -> None:
        self.context.data = value

    def configure_networks(self) -> None:
        """Let the tricks change the networks' structure (idempotent)."""
        for trick in sorted(self.tricks, key=lambda t: t.configure_order):
            trick.configure_networks(self.networks, self.context)
        if self.channels_last:
            for network in (self.generator, self.discriminator, self.networks.generator_ema):
                if network is not None:
                    network.to(memory_format=torch.channels_last)

    def attach_optimizers(
        self,
        g_optimizer: OptimizerOrFactory | None,
        d_optimizer: OptimizerOrFactory | None,
        schedulers: Sequence[Any] | None = None,
    ) -> None:
        """Give the engine its optimizers (instances, or factories of the parameters)."""
        for name, optimizer, network in (
            ("g_optimizer", g_optimizer, self.generator),
            ("d_optimizer", d_optimizer, self.discriminator),
        ):
            if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
                optimizer = optimizer(network.parameters())
            setattr(self, name, optimizer)
        self.context.g_optimizer, self.context.d_optimizer = self.g_optimizer, self.d_optimizer
        if schedulers is not None:
            self.schedulers = list(schedulers)
        self.context.schedulers = self.schedulers

    def check_tricks(self, tricks: Sequence[Trick] | None = None) -> None:
        """Raise ``ConfigError`` (one sentence) if two tricks conflict or one does not fit
        these networks or the data."""
        tricks = list(self.tricks if tricks is None else tricks)
        for trick in tricks:
            trick.check_compatibility(self.context, tricks)

    def start(self) -> None:
        """Check the tricks and let them start; the first :meth:`step` does it when the loop
        did not."""
        if self.g_optimizer is None or self.d_optimizer is None:
            raise ConfigError(
                "the engine has no optimizers; pass g_optimizer and d_optimizer (or call "
                "attach_optimizers) before the first step."
            )
        self.check_tricks()
        self.context.step = self.iteration
        for trick in self.tricks:
            trick.start(self.context)
        for detector in self.detectors:
            if detector.snapshots is not None and not detector.snapshots.kept:
                # The state a run starts from is the first healthy one: a failure before the
                # first periodic snapshot still has somewhere to roll back to.
                detector.snapshots.take(self)
        self._started = True

    def close(self) -> None:
        """The run ends: tricks undo what they installed (hooks on G's layers), and the
        recorder, if any, draws the closing pictures."""
        for trick in self.tricks:
            trick.close(self.context)
        self._started = False
        if self.recorder is not None:
            self.recorder.close(self)

    def add_trick(self, trick: Trick) -> None:
        """Switch a trick on mid-run (a detector's remedy does) from the next iteration. A
        trick that changes the networks' structure cannot join this late."""
        if type(trick).configure_networks is not Trick.configure_networks:
            raise ConfigError(
                f"{type(trick).__name__} changes the networks' structure, so it must be in the "
                "run from the start; it cannot be switched on during training."
            )
        tricks = [*self.tricks, trick]
        trick.check_compatibility(self.context, tricks)
        self.tricks = sorted(tricks, key=lambda t: t.order)
        if self._started:
            trick.start(self.context)

    def detector_reads_gradient_norms(self) -> bool:
        return any(getattr(d, "reads_gradient_norms", False) for d in self.detectors)

    # ------------------------------------------------------------------ sampling
    @property
    def sampling_generator(self) -> nn.Module:
        """The network samples come from: G's moving average when one is kept, else G."""
        ema = self.networks.generator_ema
        return ema if ema is not None else self.generator

    @torch.no_grad()
    def sample(
        self,
        n: int,
        seed: int | None = None,
        batch_size: int = 1024,
        truncation: float | None = None,
    ) -> Tensor:
        """``n`` samples in eval mode (BatchNorm uses its running statistics), on the CPU.

        ``truncation`` redraws Gaussian z outside [-t, t] (BigGAN's truncation trick).
        """
        rng = None if seed is None else torch.Generator(device="cpu").manual_seed(seed)
        network = self.sampling_generator
        device = self.context.device
        with _eval_mode(network):
            chunks = []
            for start in range(0, n, batch_size):
                count = min(batch_size, n - start)
                z = self.latent.sample(count, generator=rng, truncation=truncation)
                chunks.append(network(z.to(device)).float().cpu())
        return torch.cat(chunks) if chunks else torch.empty(0)

    @torch.no_grad()
    def judge(self, samples: Tensor) -> Tensor:
        """D's logits on ``samples``, read the way training shows them to D but without its
        random transforms: only the tricks that change D's input shape apply (packing: one
        logit per pack of m; a last incomplete pack is dropped). D runs in eval mode."""
        ctx = self.context
        for trick in self.tricks:
            if trick.samples_per_input > 1:
                whole = len(samples) - len(samples) % trick.samples_per_input
                samples = trick.transform_real(replace(ctx, phase="d"), samples[:whole])
        with _eval_mode(self.discriminator):
            return flat_logits(self.discriminator(samples.to(ctx.device)))

    def draw_latent(self, n: int) -> Tensor:
        """``n`` latent codes for a training step, from the run's own latent generator.

        Every rank draws the codes of the whole global batch and keeps its slice, so N
        processes train on exactly the codes one process with the global batch would, and the
        tricks' use of the global generators cannot shift them.
        """
        if self.latent_generator is None:
            self.latent_generator = torch.Generator(device=self.context.device)
            self.latent_generator.manual_seed(self.latent_seed)
            if self._latent_generator_state is not None:
                self.latent_generator.set_state(self._latent_generator_state)
                self._latent_generator_state = None
        _, size = distributed.world()
        codes = self.latent.sample(
            n * size, device=self.context.device, generator=self.latent_generator
        )
        return distributed.rank_slice(codes)

    # ------------------------------------------------------------------ the iteration
    def step(self, real: Tensor, *, logging_step: bool = True) -> StepSignals:
        """One iteration: D step(s), G step, schedulers, observation. Returns its signals.

        ``logging_step``: whether the loop logs this iteration's values; the gradient norms
        are then computed too (on other steps only when a detector reads them).
        """
        if not self._started:
            self.start()
        if self._pending_random_states is not None:
            set_random_states(self._pending_random_states)
            self._pending_random_states = None
        if isinstance(real, list | tuple):
            real = real[0]
        if self.channels_last and real.dim() == 4:
            real = real.contiguous(memory_format=torch.channels_last)
        ctx = self.context
        ctx.step = self.iteration
        ctx.real_batch = real
        ctx.logged = {}
        ctx.logging_step = logging_step
        norms = logging_step or self._wants_gradient_norms()
        d_steps = 0
        while True:
            d_values = self._discriminator_step(real, norms)
            d_steps += 1
            # Every trick is asked (a list, not a short-circuit): an adaptive count sees
            # every D step's loss.
            more = [t.wants_more_d_steps(ctx, d_steps, d_values["d_loss"]) for t in self.tricks]
            if d_steps >= self.n_critic and not any(more):
                break
        g_values = self._generator_step(real, norms)
        for scheduler in self.schedulers:
            scheduler.step()
        signals = self._signals(d_values, g_values, d_steps)
        self.iteration += 1
        self._observe(signals)
        if self.recorder is not None:
            self.recorder.log(self.iteration, signals, self)
        return signals

    def report(
        self,
        signals: StepSignals | Mapping[str, float],
        *,
        step: int | None = None,
        real: Tensor | None = None,
        fake: Tensor | None = None,
    ) -> list[Alarm]:
        """For a loop with its own adversarial step: the iteration's signals (the names of
        ``gan_tricks.engine.SIGNALS``, D's outputs as logits), optionally the real batch and
        G's raw output for the detectors that look at samples. Tricks observe them, detectors
        check them and take their actions; returns the alarms raised. ``step`` is the loop's
        iteration count (iterations done); by default one more than the last report's."""
        self.iteration = self.iteration + 1 if step is None else int(step)
        ctx = self.context
        ctx.step = self.iteration - 1
        ctx.real_batch, ctx.g_output = real, fake
        ctx.logging_step = True
        if not isinstance(signals, StepSignals):
            self._check_reported(signals)
        before = [len(d.alarms) for d in self.detectors]
        self._observe(signals)
        return [a for d, n in zip(self.detectors, before) for a in d.alarms[n:]]

    def _check_reported(self, signals: Mapping[str, float]) -> None:
        """D's outputs given as probabilities where logits are expected switch detectors'
        tests off silently; under a sigmoid loss the reported D loss tells which they are."""
        from gan_tricks.monitors.base import check_logits

        self._probability_like = check_logits(
            signals, self.loss.name, getattr(self, "_probability_like", 0)
        )

    def _wants_gradient_norms(self) -> bool:
        if self.gradient_norms is None:
            return self.detector_reads_gradient_norms()
        return self.gradient_norms

    def discriminate(self, real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor]:
        """D's logits on a real and a fake batch, as one batch or two (``separate_batches``)."""
        discriminator = self.discriminator
        if self.separate_batches:
            return flat_logits(discriminator(real)), flat_logits(discriminator(fake))
        logits = flat_logits(discriminator(torch.cat([real, fake])))
        return logits[: len(real)], logits[len(real) :]

    def _discriminator_step(self, real: Tensor, norms: bool) -> dict[str, Tensor]:
        ctx = self.context
        ctx.phase = "d"
        with torch.no_grad():
            fake = self.generator(self.draw_latent(len(real)))
        ctx.z, ctx.g_output, ctx.fake_batch = None, None, fake
        real_in = self._transform("transform_real", real)
        fake_in = self._transform("transform_fake", fake)
        real_logits, fake_logits = self.discriminate(real_in, fake_in)
        ctx.real, ctx.fake, ctx.real_logits, ctx.fake_logits = (
            real_in,
            fake_in,
            real_logits,
            fake_logits,
        )
        real_target, fake_target = torch.ones_like(real_logits), torch.zeros_like(fake_logits)
        for trick in self.tricks:
            real_target, fake_target = trick.targets(ctx, real_target, fake_target)
        loss = self._per_discriminator(
            self.loss.d_loss, real_logits, fake_logits, real_target, fake_target
        ).sum()
        penalties = self._penalties("d_penalty")
        loss = loss + sum(penalties.values())
        optimizer = self.d_optimizer
        optimizer.zero_grad(set_to_none=True)
        self.backward(loss)
        values = {
            "d_loss": loss.detach(),
            "d_real": real_logits.detach().mean(),
            "d_fake": fake_logits.detach().mean(),
            **{D_PENALTY_PREFIX + name: p.detach() for name, p in penalties.items()},
        }
        values = distributed.average_gradients(_parameters(optimizer), values)
        if norms:
            values["d_grad_norm"] = gradient_norm(self.discriminator.parameters())
        self._optimizer_step(optimizer, "d")
        for trick in self.tricks:
            trick.after_d_step(ctx)
        return values

    def _generator_step(self, real: Tensor, norms: bool) -> dict[str, Tensor]:
        ctx = self.context
        ctx.phase = "g"
        # D's weights get no gradient from G's loss: frozen for the step (what Lightning's
        # toggle_optimizer did), which also saves computing them.
        with _frozen(self.discriminator):
            z = self.draw_latent(len(real))
            fake = self.generator(z)
            ctx.z, ctx.g_output = z, fake
            fake_in = self._transform("transform_fake", fake)
            if self.loss.g_needs_real or not self.separate_batches:
                real_in = self._transform("transform_real", real)
                real_logits, fake_logits = self.discriminate(real_in, fake_in)
            else:
                real_in, real_logits = None, None
                fake_logits = flat_logits(self.discriminator(fake_in))
            ctx.real, ctx.fake, ctx.real_logits, ctx.fake_logits = (
                real_in,
                fake_in,
                real_logits,
                fake_logits,
            )
            losses = self._per_discriminator(self.loss.g_loss, fake_logits, real_logits)
            loss = combine_discriminator_losses(
                losses, self.d_reduction, self.d_softmax_temperature
            )
            penalties = self._penalties("g_penalty")
            loss = loss + sum(penalties.values())
            optimizer = self.g_optimizer
            optimizer.zero_grad(set_to_none=True)
            self.backward(loss)
        values = {
            "g_loss": loss.detach(),
            **{G_PENALTY_PREFIX + name: p.detach() for name, p in penalties.items()},
        }
        values = distributed.average_gradients(_parameters(optimizer), values)
        if norms:
            values["g_grad_norm"] = gradient_norm(self.generator.parameters())
        self._optimizer_step(optimizer, "g")
        # Every forward of the iteration is done: BatchNorm statistics agree from here on (and
        # G's moving average, updated next, copies them).
        distributed.average_buffers([self.generator, self.discriminator])
        for trick in self.tricks:
            trick.after_g_step(ctx)
        return values

    def _optimizer_step(self, optimizer: torch.optim.Optimizer, phase: Phase) -> None:
        for detector in self.detectors:
            detector.before_optimizer_step(self.context, optimizer)
        self.optimizer_step(optimizer, phase)

    def _signals(
        self, d_values: dict[str, Tensor], g_values: dict[str, Tensor], d_steps: int
    ) -> StepSignals:
        d_pen = {k[len(D_PENALTY_PREFIX) :]: v for k, v in d_values.items() if "/" in k}
        g_pen = {k[len(G_PENALTY_PREFIX) :]: v for k, v in g_values.items() if "/" in k}
        # A term some steps skip (a lazy penalty) reads 0 on those steps, never a stale value.
        for prefix, terms in ((D_PENALTY_PREFIX, d_pen), (G_PENALTY_PREFIX, g_pen)):
            for name in self._penalty_names:
                if name.startswith(prefix) and name[len(prefix) :] not in terms:
                    terms[name[len(prefix) :]] = torch.zeros(())
            self._penalty_names |= {prefix + name for name in terms}
        return StepSignals(
            d_loss=d_values["d_loss"],
            g_loss=g_values["g_loss"],
            d_real=d_values["d_real"],
            d_fake=d_values["d_fake"],
            d_steps=d_steps,
            d_grad_norm=d_values.get("d_grad_norm"),
            g_grad_norm=g_values.get("g_grad_norm"),
            d_penalties=d_pen,
            g_penalties=g_pen,
            logged=dict(self.context.logged),
        )

    def _observe(self, signals: StepSignals | Mapping[str, float]) -> None:
        ctx = self.context
        ctx.phase = None
        if isinstance(signals, StepSignals):
            for trick in self.tricks:
                trick.observe(ctx, signals)
            signals.logged.update(ctx.logged)
        if not self.detectors:
            return
        if isinstance(signals, StepSignals):
            floats = signals.floats()
        else:
            floats = {name: float(value) for name, value in signals.items()}
        measured_all: dict[str, float] = {}
        for detector in self.detectors:
            measured = detector.measure(ctx, floats)
            if measured and distributed.world()[1] > 1:
                # What a detector measured on its rank's batch is averaged, so every rank
                # raises the same alarms and takes the same action.
                measured = distributed.average_values(measured)
            measured_all.update(measured)
            alarm = detector.observe(self.iteration, {**floats, **measured})
            if alarm is None:
                if detector.snapshots is not None and detector.quiet_for(self.iteration):
                    detector.snapshots.maybe_take(self)
                continue
            alarm = replace(alarm, action=detector.act(self))
            detector.alarms[-1] = alarm
            for handler in self.alarm_handlers:
                handler(alarm)
        if isinstance(signals, StepSignals):
            signals.measured.update(measured_all)

    def _transform(self, hook: str, batch: Tensor) -> Tensor:
        ctx = self.context
        for trick in self.tricks:
            batch = getattr(trick, hook)(ctx, batch)
        return batch

    def _penalties(self, hook: str) -> dict[str, Tensor]:
        terms = {}
        for name, trick in unique_names(self.tricks).items():
            term = getattr(trick, hook)(self.context)
            if term is not None:
                terms[name] = term
        return terms

    @staticmethod
    def _per_discriminator(loss_fn, *logits_like: Tensor | None) -> Tensor:
        """A loss per discriminator, shape (k,): column i of (N, k) logits is D number i."""
        first = logits_like[0]
        if first.dim() == 1:
            return loss_fn(*logits_like).reshape(1)
        columns = range(first.shape[1])
        return torch.stack(
            [loss_fn(*(t if t is None else t[:, i] for t in logits_like)) for i in columns]
        )

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self, include_networks: bool = True) -> dict[str, Any]:
        """Everything the run's future depends on. ``include_networks=False`` leaves out what
        a framework saves itself (networks, optimizers, schedulers, global random states)."""
        state: dict[str, Any] = {
            "iteration": self.iteration,
            "tricks": {name: t.state_dict() for name, t in unique_names(self.tricks).items()},
            "detectors": {name: d.state_dict() for name, d in unique_names(self.detectors).items()},
            # The penalty terms seen so far: a resumed run's skipped lazy steps read 0 as the
            # uninterrupted run's do, rather than leaving the column empty.
            "penalty_names": sorted(self._penalty_names),
        }
        if self.latent_generator is not None:
            state["latent_generator"] = self.latent_generator.get_state()
        elif self._latent_generator_state is not None:
            state["latent_generator"] = self._latent_generator_state
        if include_networks:
            state["networks"] = self.networks.state_dict()
            state["optimizers"] = [
                o.state_dict() for o in (self.g_optimizer, self.d_optimizer) if o is not None
            ]
            state["schedulers"] = [s.state_dict() for s in self.schedulers]
            state["random_states"] = random_states()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s result: the next step is the one the saved run would
        have taken. Global random states are restored at that step, after whatever a loop's
        start drew."""
        if "networks" in state:
            self.networks.load_state_dict(state["networks"])
        optimizers = [o for o in (self.g_optimizer, self.d_optimizer) if o is not None]
        for optimizer, saved in zip(optimizers, state.get("optimizers", [])):
            optimizer.load_state_dict(saved)
        for scheduler, saved in zip(self.schedulers, state.get("schedulers", [])):
            scheduler.load_state_dict(saved)
        self.iteration = int(state.get("iteration", 0))
        self.context.step = self.iteration
        self._penalty_names = set(state.get("penalty_names", []))
        _load_named(self.tricks, state.get("tricks", {}), "trick")
        _load_named(self.detectors, state.get("detectors", {}), "detector")
        if "latent_generator" in state:
            self._latent_generator_state = state["latent_generator"]
            self.latent_generator = None  # rebuilt with this state at the next draw
        self._pending_random_states = state.get("random_states")

    def save(self, path: str | Path, **extra: Any) -> Path:
        """Write :meth:`state_dict` (and ``extra``: a loop's own state, such as its data
        order) to ``path``, atomically: a crash during the write leaves the previous file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        torch.save({"engine": self.state_dict(), "extra": extra}, partial)
        os.replace(partial, path)
        return path

    def load(self, path: str | Path) -> dict[str, Any]:
        """Resume from a file of :meth:`save` (read with ``weights_only=True``: tensors and
        plain types, no code runs); returns the ``extra`` it was saved with."""
        saved = torch.load(path, map_location="cpu", weights_only=True)
        self.load_state_dict(saved["engine"])
        return saved.get("extra", {})


def _load_named(objects: Sequence[Any], states: dict[str, Any], kind: str) -> None:
    named = unique_names(objects)
    missing = sorted(set(states) - set(named))
    if missing:
        raise ConfigError(
            f"the checkpoint holds the state of {kind} {', '.join(missing)}, which this run "
            f"does not have; add it back, or start a new run."
        )
    for name, obj in named.items():
        if name in states:
            obj.load_state_dict(states[name])


def _plain_step(optimizer: torch.optim.Optimizer, phase: Phase) -> None:
    optimizer.step()


def _parameters(optimizer) -> Iterable[nn.Parameter]:
    # Lazy: in one process average_gradients returns before reading them (the hot path).
    return (p for group in optimizer.param_groups for p in group["params"])


@contextmanager
def _frozen(network: nn.Module):
    params = [p for p in network.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


@contextmanager
def _eval_mode(network: nn.Module):
    was_training = network.training
    network.eval()
    try:
        yield
    finally:
        network.train(was_training)
