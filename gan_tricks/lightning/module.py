"""GANModule: the Lightning adapter around :class:`~gan_tricks.engine.GANEngine`.

The adversarial step, the tricks and the detectors live in the engine, which knows nothing of
Lightning; this module gives it what Lightning owns (the optimizers it builds, its backward
and optimizer-step routing for precision plugins and step counting, the logs, the stop
flag, checkpoints), on Lightning's public API only.
"""

from __future__ import annotations

from contextlib import nullcontext

import pytorch_lightning as pl
import torch
from pytorch_lightning.cli import LRSchedulerCallable, OptimizerCallable
from pytorch_lightning.loggers import WandbLogger
from torch import Tensor, nn

from gan_tricks import distributed
from gan_tricks.engine import GANEngine, StepSignals
from gan_tricks.engine.context import Phase
from gan_tricks.engine.recorder import print_alarm, send_alarm_to_wandb, write_alarm
from gan_tricks.errors import ConfigError
from gan_tricks.functional.latent import Latent
from gan_tricks.functional.losses import LossName
from gan_tricks.monitors.base import Alarm, Detector
from gan_tricks.tricks.base import Trick

ENGINE_STATE_KEY = "gan_engine"


class GANModule(pl.LightningModule):
    """A GAN around any generator and discriminator ``nn.Module``, trained by Lightning.

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
        tricks: the stability tricks (``gan_tricks.tricks``), in any order.
        detectors: the failure detectors (``gan_tricks.monitors``).
        n_critic: D steps per G step before any trick asks for more (WGAN uses 5).
        separate_batches: D sees real-only and fake-only batches, so BatchNorm normalises
            each on its own statistics (ganhacks #4); False feeds one mixed batch.
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
    ``--trainer.max_steps`` is the number of iterations whatever ``n_critic`` is.
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        latent: Latent | None = None,
        loss: LossName = "nonsaturating",
        g_optimizer: OptimizerCallable = torch.optim.Adam,
        d_optimizer: OptimizerCallable = torch.optim.Adam,
        g_scheduler: LRSchedulerCallable | None = None,
        d_scheduler: LRSchedulerCallable | None = None,
        tricks: list[Trick] | None = None,
        detectors: list[Detector] | None = None,
        n_critic: int = 1,
        separate_batches: bool = True,
        d_reduction: str = "mean",
        d_softmax_temperature: float = 1.0,
        channels_last: bool = False,
        compile: bool = False,
    ) -> None:
        super().__init__()
        # No saved hyperparameters: the run's config in each checkpoint keeps every setting,
        # and LightningCLI would quietly let saved hyperparameters override the recipe of a
        # resumed fit (a resume compares the recipes instead, gan_tricks.resume).
        self.automatic_optimization = False
        self.generator = generator
        self.discriminator = discriminator
        # An averaged copy of G for sampling, set by a trick (GeneratorEMA) when one is on.
        self.generator_ema: nn.Module | None = None
        self.optimizer_factories = {"g_optimizer": g_optimizer, "d_optimizer": d_optimizer}
        self.scheduler_factories = {"g_scheduler": g_scheduler, "d_scheduler": d_scheduler}
        for name, factory in self.optimizer_factories.items():
            _check_optimizer(name, factory)
        self.compile_networks = compile
        self.networks_compiled = False
        self.engine = GANEngine(
            networks=self,
            loss=loss,
            latent=latent,
            tricks=list(tricks or []),
            detectors=list(detectors or []),
            n_critic=n_critic,
            separate_batches=separate_batches,
            d_reduction=d_reduction,
            d_softmax_temperature=d_softmax_temperature,
            channels_last=channels_last,
        )
        self.engine.context.compiled = compile
        self.engine.alarm_handlers.append(self._report_alarm)
        # The last iteration's signals (None before the first).
        self.signals: StepSignals | None = None
        self.lightning_optimizers: list = []

    # ------------------------------------------------------------------ what the engine has
    @property
    def latent(self) -> Latent:
        return self.engine.latent

    @property
    def loss(self):
        return self.engine.loss

    @property
    def n_critic(self) -> int:
        return self.engine.n_critic

    @property
    def tricks(self) -> list[Trick]:
        return self.engine.tricks

    @property
    def detectors(self) -> list[Detector]:
        return self.engine.detectors

    @property
    def sampling_generator(self) -> nn.Module:
        """The network samples come from: G's moving average when one is kept, else G."""
        return self.engine.sampling_generator

    def forward(self, z: Tensor) -> Tensor:
        return self.generator(z)

    def sample(
        self,
        n: int,
        seed: int | None = None,
        batch_size: int = 1024,
        truncation: float | None = None,
    ) -> Tensor:
        """``n`` samples in eval mode (see ``GANEngine.sample``)."""
        return self.engine.sample(n, seed=seed, batch_size=batch_size, truncation=truncation)

    def judge(self, samples: Tensor) -> Tensor:
        """D's logits on ``samples`` without random transforms (see ``GANEngine.judge``)."""
        return self.engine.judge(samples)

    def check_tricks(self, datamodule=None) -> None:
        """Raise ``ConfigError`` (one sentence) if two tricks conflict, or one does not fit
        these networks or ``datamodule``; ``gan-tricks fit`` asks before it makes the run
        folder."""
        if datamodule is not None:
            self.engine.data = _data_spec(datamodule)
        self.engine.check_tricks()

    def add_trick(self, trick: Trick) -> None:
        """Switch a trick on mid-fit (a detector's remedy does), from the next iteration."""
        self.engine.add_trick(trick)

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
        # After the tricks changed the networks' structure (the engine did at construction),
        # before the optimizers, a restored checkpoint or DDP see them.
        if self.compile_networks and not self.networks_compiled:
            for network in (self.generator, self.discriminator):
                network.compile()
            self.networks_compiled = True

    def on_fit_start(self) -> None:
        trainer = self.trainer
        engine = self.engine
        # The run's seed, rank 0's, before each rank's global generators go their own way.
        engine.latent_seed = distributed.broadcast_int(torch.initial_seed())
        distributed.seed_ranks_apart()
        self.lightning_optimizers = list(self.optimizers())
        schedulers = self.lr_schedulers()
        schedulers = [] if schedulers is None else _as_list(schedulers)
        engine.attach_optimizers(
            *(optimizer.optimizer for optimizer in self.lightning_optimizers[:2]), schedulers
        )
        engine.max_steps = trainer.max_steps if trainer.max_steps > 0 else None
        datamodule = getattr(trainer, "datamodule", None)
        engine.data = _data_spec(datamodule)
        engine.backward = self.manual_backward
        engine.optimizer_step = self._optimizer_step
        self.check_generator_matches(getattr(engine.data, "sample_shape", None))
        engine.start()

    def teardown(self, stage: str) -> None:
        self.engine.close()

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

    # ------------------------------------------------------------------ the step
    def training_step(self, batch: Tensor, batch_idx: int) -> None:
        trainer = self.trainer
        logging_step = self.logs_this_step()
        iteration = self.engine.iteration = trainer.global_step
        # Under DDP, gradients are averaged per network step (``distributed.average_gradients``)
        # instead of by DDP's once-per-forward reducer, which cannot follow a D step and a G
        # step that each leave the other network without gradients.
        block_sync = getattr(trainer.strategy, "block_backward_sync", nullcontext)
        try:
            with block_sync():
                signals = self.engine.step(batch, logging_step=logging_step)
        except BaseException:
            # Lightning skips ``teardown`` when a fit crashes: remove the tricks' hooks here,
            # so the networks a user keeps after the crash are the plain ones.
            self.engine.close()
            raise
        self.signals = signals
        if self.engine.should_stop:
            trainer.should_stop = True
        if logging_step:
            logs = {"train/" + k: v for k, v in signals.as_dict().items()}
            logs.update({"monitor/" + k: v for k, v in signals.measured.items()})
            # Straight to the loggers, inside the step: Lightning's own logging of ``self.log``
            # values comes after the callbacks' ``on_train_batch_end``, so after the
            # iteration's checkpoint, and a resumed run would lack that row. ``self.log``
            # still feeds ``callback_metrics`` (EarlyStopping, a monitored ModelCheckpoint).
            self.log_dict(logs, on_step=True, logger=False)
            row = {"epoch": _data_pass(trainer, iteration), **_floats(logs)}
            for logger in trainer.loggers:
                logger.log_metrics(row, step=iteration)  # Lightning's count: from 0
            if trainer.progress_bar_callback is not None:  # each log costs ~1 ms on a CPU
                bar = {"d_loss": signals.d_loss, "g_loss": signals.g_loss}
                if self.detectors:
                    bar["alarms"] = float(sum(len(d.alarms) for d in self.detectors))
                self.log_dict(bar, prog_bar=True, logger=False)

    def logs_this_step(self) -> bool:
        """Whether the trainer writes logs after this step (every ``log_every_n_steps``).

        ``self.log`` costs about a millisecond per call on CPU, about 10 % of a toy-GAN step,
        and Lightning keeps only the logging steps' values anyway.
        """
        trainer = self.trainer
        every = trainer.log_every_n_steps
        return (trainer.global_step + 1) % every == 0 or trainer.should_stop

    def _optimizer_step(self, optimizer: torch.optim.Optimizer, phase: Phase) -> None:
        if phase == "g":
            # Counted in ``global_step``: one iteration.
            self.lightning_optimizers[0].step()
            return
        # D steps through the strategy (precision plugins, AMP scaling) without counting:
        # Lightning counts every LightningOptimizer step under manual optimization (Lightning
        # issue #17958), which would make ``max_steps`` mean "D steps + G steps".
        self.trainer.strategy.optimizer_step(optimizer, closure=_no_closure)

    def _report_alarm(self, alarm: Alarm) -> None:
        trainer = self.trainer
        if not trainer.is_global_zero:
            return
        progress_bar = trainer.progress_bar_callback
        printer = (
            progress_bar.print if progress_bar is not None and progress_bar.is_enabled else None
        )
        print_alarm(alarm, printer)
        write_alarm(trainer.default_root_dir, alarm)
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                send_alarm_to_wandb(logger.experiment, alarm)

    # ------------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # Lightning saves the networks, optimizers and schedulers; the engine the rest.
        checkpoint[ENGINE_STATE_KEY] = self.engine.state_dict(include_networks=False)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint.get(ENGINE_STATE_KEY)
        if state is not None:
            self.engine.load_state_dict(state)


def _data_spec(datamodule):
    """The data module when it says its sample shape and kind (what the engine asks)."""
    if datamodule is not None and hasattr(datamodule, "sample_shape"):
        return datamodule
    return None


def _no_closure() -> None:
    return None


def _data_pass(trainer: pl.Trainer, iteration: int) -> int:
    """The pass over the training data that iteration ``iteration`` (from 0) is in.

    Counted from the iteration, not read from ``trainer.current_epoch``: after a resume from a
    checkpoint written mid-epoch or at ``max_steps``, Lightning's epoch counter can run one
    ahead of the uninterrupted run's, and the resumed rows must be the same rows.
    """
    batches = trainer.num_training_batches
    if isinstance(batches, int) and batches > 0:
        return iteration // batches
    return trainer.current_epoch  # a loader without a length: Lightning's count is all there is


def _floats(values: dict) -> dict[str, float]:
    return {key: float(value) for key, value in values.items()}


def _as_list(value) -> list:
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
