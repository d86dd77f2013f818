"""Annealed Gaussian noise: on D's inputs (instance noise) and on G's layers (ganhacks #13)."""

from __future__ import annotations

from typing import Any

from torch import Tensor
from torch.utils.hooks import RemovableHandle

from gan_tricks.engine.context import StepContext
from gan_tricks.engine.signals import StepSignals
from gan_tricks.errors import ConfigError
from gan_tricks.functional.noise import (
    GENERATOR_LAYER_TYPES,
    SCHEDULES,
    add_instance_noise,
    add_layer_noise,
    instance_noise_sigma,
    matching_layers,
)
from gan_tricks.tricks.base import PHASES, Trick

__all__ = ["GeneratorLayerNoise", "InstanceNoise"]


class _AnnealedNoise(Trick):
    """A noise std annealed over generator steps, which failure monitors can raise (boost)."""

    def __init__(self, sigma: float, anneal_steps: int | None, schedule: str) -> None:
        name = type(self).__name__
        if sigma < 0:
            raise ConfigError(f"{name} sigma must be >= 0 (got {sigma}).")
        if schedule not in SCHEDULES:
            raise ConfigError(
                f"{name} schedule must be one of {', '.join(SCHEDULES)} (got {schedule!r})."
            )
        if anneal_steps is not None and schedule == "constant":
            raise ConfigError(
                f"{name} anneal_steps has no effect with schedule constant; set schedule: linear "
                "or cosine, or drop anneal_steps."
            )
        if anneal_steps is not None and anneal_steps < 1:
            raise ConfigError(f"{name} anneal_steps must be at least 1 (got {anneal_steps}).")
        self.sigma = float(sigma)
        self.anneal_steps = anneal_steps
        self.schedule = schedule
        # Raised by boost(); a run's state, so it is saved in checkpoints.
        self.scale = 1.0
        self.step = 0
        self._resolved_anneal_steps = anneal_steps or 1

    def start(self, ctx: StepContext) -> None:
        if self.schedule != "constant" and self.anneal_steps is None:
            # Unset anneal_steps means: reach zero at the end of the run, so it needs an end.
            if not ctx.max_steps:
                raise ConfigError(
                    f"{type(self).__name__} anneals over the run's max_steps but none is set; "
                    "give the engine max_steps (trainer.max_steps in a recipe) or set the "
                    "trick's anneal_steps."
                )
            self._resolved_anneal_steps = ctx.max_steps
        self.step = ctx.step

    def observe(self, ctx: StepContext, signals: StepSignals) -> None:
        # The std this iteration used (``step`` stays the iteration it was last used in).
        self.step = ctx.step
        ctx.log(f"{type(self).__name__}/sigma", self.current_sigma)

    def sigma_at(self, step: int) -> float:
        """The noise's std after ``step`` generator steps, boosts included."""
        return instance_noise_sigma(
            step, self.sigma * self.scale, self._resolved_anneal_steps, self.schedule
        )

    @property
    def current_sigma(self) -> float:
        """The noise's std at the current generator step."""
        return self.sigma_at(self.step)

    def boost(self, factor: float) -> None:
        """Multiply the starting std by ``factor`` (> 0), e.g. when D overpowers G.

        The schedule keeps its shape, so the current std is multiplied by ``factor`` too;
        once a schedule has annealed to zero a boost has no effect.
        """
        if factor <= 0:
            raise ConfigError(f"{type(self).__name__}.boost factor must be > 0 (got {factor}).")
        self.scale *= factor

    def state_dict(self) -> dict[str, Any]:
        return {"scale": self.scale}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.scale = float(state_dict["scale"])


class InstanceNoise(_AnnealedNoise):
    """Gaussian noise on every sample D sees, real and fake, annealed to 0.

    Sønderby et al. 2017 ("Amortised MAP inference for image super-resolution") and Arjovsky
    & Bottou 2017 ("Towards principled methods for training GANs"): noise of std
    ``sigma(step)`` makes the real and fake distributions overlap, so D cannot separate them
    perfectly and its gradients stay useful. ``sigma`` falls to 0 over ``anneal_steps``
    generator steps (the whole run when unset) along ``schedule``. ``phases`` says where D's
    inputs are noised: the D step (``"d"``) and G's step (``"g"``), so that G is judged on the
    same blurred inputs D learns from. Runs after augmentation and before packing.
    """

    def __init__(
        self,
        sigma: float = 0.1,
        anneal_steps: int | None = None,
        schedule: str = "linear",
        phases: tuple[str, ...] = PHASES,
    ) -> None:
        super().__init__(sigma, anneal_steps, schedule)
        if not phases or not set(phases) <= set(PHASES):
            raise ConfigError(
                f"InstanceNoise phases must be a non-empty list of {' and '.join(PHASES)} "
                f"(got {list(phases)})."
            )
        self.phases = tuple(phases)

    def transform_real(self, ctx: StepContext, real: Tensor) -> Tensor:
        return self._noised(ctx, real)

    def transform_fake(self, ctx: StepContext, fake: Tensor) -> Tensor:
        return self._noised(ctx, fake)

    def _noised(self, ctx: StepContext, batch: Tensor) -> Tensor:
        if ctx.phase not in self.phases:
            return batch
        self.step = ctx.step
        return add_instance_noise(batch, self.current_sigma)


class GeneratorLayerNoise(_AnnealedNoise):
    """N(0, sigma^2) noise on the output of every Linear / conv layer of G in training mode.

    ganhacks #13, "add noise to every layer of G" (Zhao et al. 2017, EBGAN). Forward hooks
    (``gan_tricks.functional.noise.add_layer_noise``) put it on any generator, registered
    when the run starts and removed when it closes, so the state dict is unchanged and
    eval-mode sampling is noise-free. ``layer_types`` are class names (subclasses match
    too); G's last matching layer, its output, is skipped unless ``include_output``. The
    std is constant by default; ``schedule: linear`` anneals it to 0 over ``anneal_steps``
    generator steps (the whole run when unset).
    """

    def __init__(
        self,
        sigma: float = 0.1,
        anneal_steps: int | None = None,
        schedule: str = "constant",
        layer_types: tuple[str, ...] = GENERATOR_LAYER_TYPES,
        include_output: bool = False,
    ) -> None:
        super().__init__(sigma, anneal_steps, schedule)
        if not layer_types:
            raise ConfigError(
                "GeneratorLayerNoise layer_types must name at least one layer class, "
                f"e.g. {list(GENERATOR_LAYER_TYPES)}."
            )
        self.layer_types = tuple(layer_types)
        self.include_output = include_output
        self._handles: list[RemovableHandle] = []

    def start(self, ctx: StepContext) -> None:
        super().start(ctx)
        self.remove_noise()
        generator = ctx.generator
        if not matching_layers(generator, self.layer_types, self.include_output):
            raise ConfigError(
                f"GeneratorLayerNoise found no {'/'.join(self.layer_types)} layer in the "
                "generator besides its output; set layer_types to the generator's layer classes."
            )
        # G runs before any hook of the iteration sees it: the std follows the context's step.
        self._handles = add_layer_noise(
            generator, lambda: self.sigma_at(ctx.step), self.layer_types, self.include_output
        )

    def remove_noise(self) -> None:
        """Take the hooks off G (the run closes, or crashes)."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def close(self, ctx: StepContext) -> None:
        self.remove_noise()
