"""GANModule: the adversarial step, written once, and the hook points tricks plug into."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import nullcontext
from functools import partial
from typing import Any, NamedTuple

import pytorch_lightning as pl
import torch
from pytorch_lightning.cli import LRSchedulerCallable, OptimizerCallable
from pytorch_lightning.plugins.precision import Precision
from pytorch_lightning.profilers import PassThroughProfiler
from pytorch_lightning.strategies import SingleDeviceStrategy
from torch import Tensor, nn

from gan_tricks import distributed
from gan_tricks.errors import ConfigError
from gan_tricks.functional.latent import Latent
from gan_tricks.functional.losses import (
    DISCRIMINATOR_REDUCTIONS,
    combine_discriminator_losses,
    get_loss,
)
from gan_tricks.tricks.base import Trick

# The signals every step records, in the one place loggers and failure detectors read them.
SIGNALS = (
    "d_loss",  # D's loss of the last D step, penalties included
    "g_loss",  # G's loss, penalties included
    "d_real",  # mean of D's logits on the real batch (last D step)
    "d_fake",  # mean of D's logits on the fake batch (last D step)
    "d_grad_norm",  # total L2 norm of D's gradients before its last step (*)
    "g_grad_norm",  # total L2 norm of G's gradients before its step (*)
    "d_steps",  # D steps taken in this iteration
)
# (*) On logging steps, and on every step when a callback says it reads them (a class attribute
# ``reads_gradient_norms = True``, as GradientPathology has): about 2 % of a small model's step
# on a CPU otherwise spent on numbers nobody reads.


# Constructor arguments that are factories (classes or partials), not values.
FACTORY_ARGUMENTS = ("g_optimizer", "d_optimizer", "g_scheduler", "d_scheduler")


def _grad_norm(parameters: Iterable[nn.Parameter]) -> Tensor:
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.nn.utils.get_total_norm(grads)


class GANModule(pl.LightningModule):
    """A GAN around any generator and discriminator ``nn.Module``.

    Args:
        generator: maps latent codes (N, latent.dim) to samples shaped like the data.
        discriminator: maps samples to one logit each, shape (N,) or (N, 1).
        latent: dimension and distribution of z.
        loss: one of ``gan_tricks.functional.LOSSES``.
        g_optimizer: G's optimizer (``class_path`` / ``init_args`` in YAML); the two
            networks may use different classes (Adam for G, SGD for D).
        d_optimizer: D's optimizer.
        g_scheduler: an optional LR scheduler of G's optimizer, stepped once per iteration.
        d_scheduler: the same for D's optimizer.
        n_critic: D steps per G step before any trick asks for more (WGAN uses 5).
        separate_batches: D sees real-only and fake-only batches, so BatchNorm normalises
            each on its own statistics (ganhacks #4); False feeds one mixed batch, for
            comparison.
        d_reduction: how G's losses against several discriminators combine when D returns
            (N, k) logits (``gan_tricks.models.DiscriminatorEnsemble``): ``mean``, ``max``
            (the harshest critic) or ``softmax`` (GMAN's soft maximum, Durugkar et al. 2017);
            each discriminator always trains on its own loss.
        d_softmax_temperature: the softmax reduction's temperature (-> 0: max, -> inf: mean).
        channels_last: keep image networks and batches in the NHWC memory layout, which
            convolutions run faster in on recent GPUs (tensor cores) and often on CPUs.
        compile: ``torch.compile`` G's and D's forward passes in place (``nn.Module.compile``,
            so checkpoints keep their keys); the first steps pay the compilation. Not with a
            gradient penalty: compiled graphs cannot be differentiated twice.

    One training iteration is one G step; ``trainer.global_step`` counts G steps, so
    ``--trainer.max_steps`` is the number of iterations whatever ``n_critic`` is. All D steps of
    an iteration see that iteration's real batch, each with freshly drawn fakes.
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        latent: Latent | None = None,
        loss: str = "nonsaturating",
        g_optimizer: OptimizerCallable = torch.optim.Adam,
        d_optimizer: OptimizerCallable = torch.optim.Adam,
        g_scheduler: LRSchedulerCallable | None = None,
        d_scheduler: LRSchedulerCallable | None = None,
        n_critic: int = 1,
        separate_batches: bool = True,
        d_reduction: str = "mean",
        d_softmax_temperature: float = 1.0,
        channels_last: bool = False,
        compile: bool = False,
    ) -> None:
        super().__init__()
        # The networks are saved in the state dict; as hyperparameters they would be pickled.
        # The optimizer and scheduler factories (classes, partials) would make a checkpoint
        # unloadable by torch.load(weights_only=True); the run's config keeps them.
        self.save_hyperparameters(ignore=["generator", "discriminator", *FACTORY_ARGUMENTS])
        self.automatic_optimization = False
        self.generator = generator
        self.discriminator = discriminator
        self.latent = latent if latent is not None else Latent()
        self.loss = get_loss(loss)
        if n_critic < 1:
            raise ConfigError(f"model.n_critic must be at least 1 (got {n_critic}).")
        self.n_critic = n_critic
        self.separate_batches = separate_batches
        if d_reduction not in DISCRIMINATOR_REDUCTIONS:
            raise ConfigError(
                f"model.d_reduction must be one of {', '.join(DISCRIMINATOR_REDUCTIONS)} "
                f"(got {d_reduction!r})."
            )
        if d_softmax_temperature <= 0:
            raise ConfigError(
                f"model.d_softmax_temperature must be > 0 (got {d_softmax_temperature})."
            )
        self.d_reduction = d_reduction
        self.d_softmax_temperature = d_softmax_temperature
        self.channels_last = channels_last
        self.compile_networks = compile
        # An averaged copy of G for sampling, set by a trick (GeneratorEMA) when one is on.
        self.generator_ema: nn.Module | None = None
        self.optimizer_factories = {"g_optimizer": g_optimizer, "d_optimizer": d_optimizer}
        self.scheduler_factories = {"g_scheduler": g_scheduler, "d_scheduler": d_scheduler}
        for name, factory in self.optimizer_factories.items():
            _check_optimizer(name, factory)
        self.signals: dict[str, Tensor] = {}
        # The current G step's latent codes and G's output before any trick transforms them.
        self.g_latent: Tensor | None = None
        self.g_fake: Tensor | None = None
        self._tricks: list[Trick] = []
        self._term_names: set[str] = set()
        self._every_gradient_norm = False  # set at fit start (see SIGNALS)
        # The hooks around backward and the optimizers' steps when the module may call them
        # itself (set at fit start, see ``_StepHooks``); None: Lightning's path.
        self._step_hooks: _StepHooks | None = None
        # Training's latent codes come from a generator of their own, shared by all ranks
        # (see ``draw_latent``); created at the first draw, its state travels in checkpoints.
        self.latent_generator: torch.Generator | None = None
        self._latent_generator_state: Tensor | None = None
        self._latent_seed = 0  # set from the run's seed when a fit starts

    # ------------------------------------------------------------------ set-up
    def configure_optimizers(self):
        opt_g = self.optimizer_factories["g_optimizer"](self.generator.parameters())
        opt_d = self.optimizer_factories["d_optimizer"](self.discriminator.parameters())
        schedulers = [
            factory(opt)
            for factory, opt in zip(self.scheduler_factories.values(), (opt_g, opt_d))
            if factory is not None
        ]
        return [opt_g, opt_d], schedulers

    def configure_model(self) -> None:
        # After the tricks changed the networks' structure (their ``setup``), before the
        # optimizers, a restored checkpoint or DDP see them. Both changes are idempotent.
        if self.channels_last:
            for network in (self.generator, self.discriminator, self.generator_ema):
                if network is not None:
                    network.to(memory_format=torch.channels_last)
        if self.compile_networks:
            for network in (self.generator, self.discriminator):
                if getattr(network, "_compiled_call_impl", None) is None:
                    network.compile()

    def on_fit_start(self) -> None:
        # The run's seed, rank 0's, before each rank's global generators go their own way.
        self._latent_seed = distributed.broadcast_int(torch.initial_seed())
        distributed.seed_ranks_apart()
        callbacks = self.trainer.callbacks
        self._every_gradient_norm = any(
            getattr(cb, "reads_gradient_norms", False) for cb in callbacks
        )
        tricks = [cb for cb in callbacks if isinstance(cb, Trick)]
        self.check_tricks(tricks)
        self._tricks = sorted(tricks, key=lambda trick: trick.order)  # stable: recipe order
        self._step_hooks = _StepHooks.of(self.trainer, self)
        datamodule = getattr(self.trainer, "datamodule", None)
        self.check_generator_matches(getattr(datamodule, "sample_shape", None))

    def check_tricks(self, tricks: list[Trick]) -> None:
        """Raise ``ConfigError`` (one sentence) if two of ``tricks`` conflict, or one does not
        fit these networks. ``gan-tricks fit`` asks before it creates the run folder."""
        for trick in tricks:
            trick.check_compatibility(self, tricks)

    def add_trick(self, trick: Trick) -> None:
        """Switch a trick on in the middle of a fit (a detector's remedy does): it joins the
        trainer's callbacks and every hook of the step from the next iteration. A trick that
        changes the networks' structure (spectral norm, an EMA copy) cannot join this late."""
        if type(trick).configure_networks is not Trick.configure_networks:
            raise ConfigError(
                f"{type(trick).__name__} changes the networks' structure, so it must be in the "
                "recipe from the start; it cannot be switched on during a fit."
            )
        trick.check_compatibility(self, [*self._tricks, trick])
        self.trainer.callbacks.append(trick)
        self._tricks = sorted([*self._tricks, trick], key=lambda t: t.order)
        self._step_hooks = _StepHooks.of(self.trainer, self)

    def check_generator_matches(self, sample_shape: tuple[int, ...] | None) -> None:
        """Raise ``ConfigError`` unless G makes samples of the data's ``sample_shape``.

        Runs G on two codes from a generator of its own, so the check draws nothing from the
        global random numbers a run (or its resumption) depends on.
        """
        if sample_shape is None:
            return
        codes = self.latent.sample(2, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            was_training = self.generator.training
            self.generator.eval()
            try:
                made = tuple(self.generator(codes.to(self.device)).shape[1:])
            except RuntimeError as error:
                raise ConfigError(
                    f"the generator cannot make a sample ({str(error).splitlines()[0]}); "
                    "check the model's image_size, channels and latent_dim against each other."
                ) from None
            finally:
                self.generator.train(was_training)
        if made != tuple(sample_shape):
            raise ConfigError(
                f"the generator makes samples of shape {made} but the data has shape "
                f"{tuple(sample_shape)}; make the model's image_size/channels (or out_dim) match "
                "the data's."
            )

    # ------------------------------------------------------------------ sampling
    def forward(self, z: Tensor) -> Tensor:
        return self.generator(z)

    @property
    def sampling_generator(self) -> nn.Module:
        """The network samples come from: G's moving average when one is kept, else G."""
        return self.generator_ema if self.generator_ema is not None else self.generator

    @torch.no_grad()
    def sample(
        self,
        n: int,
        seed: int | None = None,
        batch_size: int = 1024,
        truncation: float | None = None,
    ) -> Tensor:
        """``n`` samples in eval mode (BatchNorm uses its running statistics).

        ``truncation`` redraws Gaussian z outside [-t, t] (BigGAN's truncation trick),
        trading diversity for quality.
        """
        rng = None
        if seed is not None:
            rng = torch.Generator(device="cpu").manual_seed(seed)
        network = self.sampling_generator
        was_training = network.training
        network.eval()
        try:
            chunks = []
            for start in range(0, n, batch_size):
                count = min(batch_size, n - start)
                z = self.latent.sample(count, generator=rng, truncation=truncation)
                chunks.append(network(z.to(self.device)).float().cpu())
        finally:
            network.train(was_training)
        return torch.cat(chunks) if chunks else torch.empty(0)

    @torch.no_grad()
    def judge(self, samples: Tensor) -> Tensor:
        """D's logits on ``samples`` (real or generated), read the way training shows them to D
        but without its random transforms (augmentation, noise): only the tricks that change
        D's input shape apply (packing: one logit per pack of m, and a last incomplete pack is
        dropped). D runs in eval mode, so its BatchNorm statistics are left as they were."""
        for trick in self._tricks:
            if trick.samples_per_input > 1:
                whole = len(samples) - len(samples) % trick.samples_per_input
                samples = trick.transform_real(self, samples[:whole], "d")
        was_training = self.discriminator.training
        self.discriminator.eval()
        try:
            return _flat(self.discriminator(samples.to(self.device)))
        finally:
            self.discriminator.train(was_training)

    # ------------------------------------------------------------------ the step
    def draw_latent(self, n: int) -> Tensor:
        """``n`` latent codes for a training step, from the run's own latent generator.

        Every rank draws the codes of the whole global batch (world size x ``n``) and keeps its
        slice, so N processes train on exactly the codes one process with the global batch
        would, and the tricks' use of the global generators cannot shift them.
        """
        if self.latent_generator is None:
            self.latent_generator = torch.Generator(device=self.device)
            self.latent_generator.manual_seed(self._latent_seed)
            if self._latent_generator_state is not None:
                self.latent_generator.set_state(self._latent_generator_state)
                self._latent_generator_state = None
        _, size = distributed.world()
        codes = self.latent.sample(n * size, device=self.device, generator=self.latent_generator)
        return distributed.rank_slice(codes)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        if self.latent_generator is not None:
            checkpoint["latent_generator"] = self.latent_generator.get_state()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint.get("latent_generator")
        if state is not None:
            self._latent_generator_state = state
            self.latent_generator = None  # rebuilt with this state at the next draw

    def discriminate(self, real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor]:
        """D's logits on a real and a fake batch, as one batch or two (``separate_batches``)."""
        if self.separate_batches:
            return _flat(self.discriminator(real)), _flat(self.discriminator(fake))
        logits = _flat(self.discriminator(torch.cat([real, fake])))
        return logits[: len(real)], logits[len(real) :]

    def training_step(self, batch: Tensor, batch_idx: int) -> None:
        # Under DDP, gradients are averaged per network step (``distributed.average_gradients``)
        # instead of by DDP's once-per-forward reducer, which cannot follow a D step and a G
        # step that each leave the other network without gradients.
        block_sync = getattr(self.trainer.strategy, "block_backward_sync", nullcontext)
        with block_sync():
            self._iteration(batch)

    def _iteration(self, batch: Tensor) -> None:
        real = batch[0] if isinstance(batch, list | tuple) else batch
        if self.channels_last and real.dim() == 4:
            real = real.contiguous(memory_format=torch.channels_last)
        opt_g, opt_d = self.optimizers()
        d_steps = 0
        while True:
            d_signals = self._discriminator_step(real, opt_d)
            d_steps += 1
            more = [t.wants_more_d_steps(self, d_steps, d_signals["d_loss"]) for t in self._tricks]
            if d_steps >= self.n_critic and not any(more):
                break
        g_signals = self._generator_step(real, opt_g)
        for scheduler in _as_list(self.lr_schedulers()):
            scheduler.step()
        signals = {**d_signals, **g_signals, "d_steps": torch.tensor(float(d_steps))}
        # A term some steps skip (a lazy penalty) reads 0 on those steps, never a stale value.
        for name in self._term_names - signals.keys():
            signals[name] = torch.zeros(())
        self._term_names |= {name for name in signals if "_penalty/" in name}
        self.signals = signals
        if self._logs_this_step():
            self.log_dict({"train/" + k: v for k, v in self.signals.items()}, on_step=True)
            if self.trainer.progress_bar_callback is not None:  # each log costs ~1 ms on a CPU
                self.log_dict(
                    {"d_loss": d_signals["d_loss"], "g_loss": g_signals["g_loss"]},
                    prog_bar=True,
                    logger=False,
                )

    def _logs_this_step(self) -> bool:
        """Whether the trainer writes logs after this step (every ``log_every_n_steps``).

        ``self.log`` costs about a millisecond per call on CPU, about 10 % of a toy-GAN step,
        and Lightning drops step values between logging steps anyway. ``self.signals`` is set
        on every step for whoever needs each one (tricks, monitors).
        """
        connector = getattr(self._trainer, "_logger_connector", None)
        return connector is None or connector.should_update_logs

    def _discriminator_step(self, real: Tensor, opt_d) -> dict[str, Tensor]:
        with torch.no_grad():
            fake = self.generator(self.draw_latent(len(real)))
        real_in = self._apply_tricks("transform_real", real, "d")
        fake_in = self._apply_tricks("transform_fake", fake, "d")
        self.toggle_optimizer(opt_d)
        real_logits, fake_logits = self.discriminate(real_in, fake_in)
        real_target, fake_target = torch.ones_like(real_logits), torch.zeros_like(fake_logits)
        for trick in self._tricks:
            real_target, fake_target = trick.targets(self, real_target, fake_target)
        loss = self._per_discriminator(
            self.loss.d_loss, real_logits, fake_logits, real_target, fake_target
        ).sum()
        penalties = _named_terms(
            self._tricks, "d_penalty", self, real_in, fake_in, real_logits, fake_logits
        )
        loss = loss + sum(penalties.values())
        opt_d.zero_grad(set_to_none=True)
        self._backward(loss)
        signals = {
            "d_loss": loss.detach(),
            "d_real": real_logits.detach().mean(),
            "d_fake": fake_logits.detach().mean(),
            **{f"d_penalty/{name}": p.detach() for name, p in penalties.items()},
        }
        signals = distributed.average_gradients(_parameters(opt_d), signals)
        if self._every_gradient_norm or self._logs_this_step():
            signals["d_grad_norm"] = _grad_norm(self.discriminator.parameters())
        self._step_without_counting(opt_d)
        self.untoggle_optimizer(opt_d)
        for trick in self._tricks:
            trick.after_d_step(self)
        return signals

    def _generator_step(self, real: Tensor, opt_g) -> dict[str, Tensor]:
        self.toggle_optimizer(opt_g)
        z = self.draw_latent(len(real))
        fake = self.generator(z)
        # A trick whose G term needs the codes or G's raw output (before packing, augmentation
        # or noise) reads them here: MixtureClassifier does.
        self.g_latent, self.g_fake = z, fake
        fake_in = self._apply_tricks("transform_fake", fake, "g")
        if self.loss.g_needs_real or not self.separate_batches:
            real_in = self._apply_tricks("transform_real", real, "g")
            real_logits, fake_logits = self.discriminate(real_in, fake_in)
        else:
            real_logits, fake_logits = None, _flat(self.discriminator(fake_in))
        losses = self._per_discriminator(self.loss.g_loss, fake_logits, real_logits)
        loss = combine_discriminator_losses(losses, self.d_reduction, self.d_softmax_temperature)
        penalties = _named_terms(self._tricks, "g_penalty", self, fake_in, fake_logits)
        loss = loss + sum(penalties.values())
        opt_g.zero_grad(set_to_none=True)
        self._backward(loss)
        signals = {
            "g_loss": loss.detach(),
            **{f"g_penalty/{name}": p.detach() for name, p in penalties.items()},
        }
        signals = distributed.average_gradients(_parameters(opt_g), signals)
        if self._every_gradient_norm or self._logs_this_step():
            signals["g_grad_norm"] = _grad_norm(self.generator.parameters())
        self._step_counting(opt_g)
        self.untoggle_optimizer(opt_g)
        # Every forward of the iteration is done: BatchNorm statistics agree from here on (and
        # G's moving average, updated next, copies them).
        distributed.average_buffers([self.generator, self.discriminator])
        for trick in self._tricks:
            trick.after_g_step(self)
        return signals

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

    def _apply_tricks(self, hook: str, batch: Tensor, phase: str) -> Tensor:
        for trick in self._tricks:
            batch = getattr(trick, hook)(self, batch, phase)
        return batch

    def _backward(self, loss: Tensor) -> None:
        hooks = self._step_hooks
        if hooks is None:
            self.manual_backward(loss)
            return
        hooks.call("on_before_backward", hooks.before_backward, loss)
        self.backward(loss)
        hooks.call("on_after_backward", hooks.after_backward)

    def _step_without_counting(self, optimizer) -> None:
        """Step D through the strategy (precision plugins, AMP scaling) without counting it.

        Lightning counts every optimizer step in ``global_step`` under manual optimization
        (Lightning issue #17958), which would make ``max_steps`` mean "D steps + G steps".
        """
        hooks = self._step_hooks
        if hooks is None:
            self.trainer.strategy.optimizer_step(optimizer.optimizer, closure=_no_closure)
            return
        hooks.call("on_before_optimizer_step", hooks.before_step, optimizer.optimizer)
        optimizer.optimizer.step()

    def _step_counting(self, optimizer) -> None:
        """Step G, counted in ``global_step`` (one iteration)."""
        if self._step_hooks is None:
            optimizer.step()
            return
        # What ``LightningOptimizer.step`` does around the strategy's step: the manual loop's
        # step counting (these callables are the loop's, see Lightning's
        # ``_ManualOptimization.on_run_start``).
        optimizer._on_before_step()
        self._step_without_counting(optimizer)
        optimizer._on_after_step()


def _named_terms(tricks: list[Trick], hook: str, *args) -> dict[str, Tensor]:
    """Every trick's extra loss term, keyed by the trick's name (see ``trick_names``)."""
    terms = {}
    for name, trick in trick_names(tricks).items():
        term = getattr(trick, hook)(*args)
        if term is not None:
            terms[name] = term
    return terms


def trick_names(tricks: list[Trick]) -> dict[str, Trick]:
    """Each trick's name in signals and logs: its class name, numbered when a class repeats.

    Two ``GradientPenalty`` tricks (R1 and R2) become ``GradientPenalty`` and
    ``GradientPenalty_2``, so neither term is lost.
    """
    names: dict[str, Trick] = {}
    for trick in tricks:
        base = type(trick).__name__
        name, index = base, 1
        while name in names:
            index += 1
            name = f"{base}_{index}"
        names[name] = trick
    return names


def _parameters(optimizer) -> Iterable[nn.Parameter]:
    # Lazy: in one process average_gradients returns before reading them (the hot path).
    return (p for group in optimizer.param_groups for p in group["params"])


def _no_closure() -> None:
    return None


class _StepHooks(NamedTuple):
    """The hooks around backward and the optimizers' steps, for the module to call itself.

    Under manual optimization Lightning routes each ``manual_backward`` and optimizer step
    through the strategy and the precision plugin, which call every callback's
    ``on_before_backward``, ``on_after_backward`` and ``on_before_optimizer_step`` (most of
    them Lightning's empty defaults), each in a profiler context: about 2 % of a small model's
    step on a CPU with a handful of callbacks (``benchmarks/step_overhead.py``). With plain
    32-bit precision on one device and no profiler those layers add nothing else, so the module
    calls the hooks that someone overrides, in Lightning's order (callbacks, then the module),
    then ``backward`` or the optimizer's ``step`` directly. Anything else (mixed precision's
    scaling, DDP, a profiler) keeps Lightning's path: :meth:`of` returns None.
    """

    before_backward: tuple[Callable, ...]
    after_backward: tuple[Callable, ...]
    before_step: tuple[Callable, ...]
    module: pl.LightningModule

    @classmethod
    def of(cls, trainer: pl.Trainer, module: pl.LightningModule) -> _StepHooks | None:
        plain = (
            type(trainer.strategy) is SingleDeviceStrategy
            and type(trainer.strategy.precision_plugin) is Precision
            and isinstance(trainer.profiler, PassThroughProfiler)
            # The manual loop's step counting, called by ``_step_counting``.
            and all(
                hasattr(opt, "_on_before_step") for opt in trainer.strategy._lightning_optimizers
            )
        )
        if not plain:
            return None

        def overriding(name: str) -> tuple[Callable, ...]:
            hooks: list[Callable] = [
                partial(getattr(callback, name), trainer, module)
                for callback in trainer.callbacks
                if getattr(type(callback), name) is not getattr(pl.Callback, name)
            ]
            if getattr(type(module), name) is not getattr(pl.LightningModule, name):
                hooks.append(getattr(module, name))
            return tuple(hooks)

        return cls(
            overriding("on_before_backward"),
            overriding("on_after_backward"),
            overriding("on_before_optimizer_step"),
            module,
        )

    def call(self, name: str, hooks: tuple[Callable, ...], *args: Any) -> None:
        if not hooks:
            return
        # As Lightning's dispatch does: a hook that logs is checked against the hook's name.
        previous = self.module._current_fx_name
        self.module._current_fx_name = name
        for hook in hooks:
            hook(*args)
        self.module._current_fx_name = previous


def _flat(logits: Tensor) -> Tensor:
    return logits.reshape(len(logits), -1).squeeze(1) if logits.dim() > 1 else logits


def _as_list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _check_optimizer(name: str, factory: OptimizerCallable) -> None:
    """Build the optimizer on a dummy parameter so a bad setting fails before any run starts."""
    try:
        optimizer = factory([nn.Parameter(torch.zeros(1))])
    except (ValueError, TypeError) as error:
        raise ConfigError(f"model.{name} cannot be built: {error}.") from None
    for group in optimizer.param_groups:
        lr = group.get("lr")
        if isinstance(lr, float | int) and lr <= 0:
            raise ConfigError(f"model.{name} learning rate must be > 0 (got {lr}).")
