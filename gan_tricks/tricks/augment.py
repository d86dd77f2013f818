"""Augmentation of what D sees: DiffAugment, adaptive augmentation (ADA), adaptive pseudo
augmentation (APA), consistency (bCR).

Thin tricks over :mod:`gan_tricks.functional.augment`; see there for the maths.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from gan_tricks.distributed import average_values, world
from gan_tricks.engine.context import StepContext
from gan_tricks.engine.signals import StepSignals
from gan_tricks.errors import ConfigError
from gan_tricks.functional.augment import (
    ada_heuristic,
    ada_update,
    augment_with_probability,
    consistency_penalty,
    diff_augment,
    gaussian_jitter,
    parse_policy,
    pseudo_augment,
)
from gan_tricks.tricks.base import ORDER_AUGMENT, Trick

DEFAULT_POLICY = "color,translation,cutout"
# APA swaps reals for fakes before any augmentation, which then treats both alike (as the
# authors' code runs its pseudo reals through ADA's pipeline).
ORDER_PSEUDO_AUGMENT = ORDER_AUGMENT - 5


def _require_images(ctx: StepContext, trick: str) -> None:
    # The data's kind is unknown (None) when the loop gave the engine no data spec: no check.
    kind = ctx.data_kind
    if kind is not None and kind != "images":
        raise ConfigError(
            f"{trick} augments images but the data is {kind}; remove it from model.tricks "
            "or train on image data."
        )


class DiffAugment(Trick):
    """DiffAugment (Zhao et al. 2020, "Differentiable augmentation for data-efficient GAN
    training").

    Augments real and fake images with :func:`~gan_tricks.functional.augment.diff_augment` in
    every D step and in the G step, so D never sees un-augmented images and G is trained
    through the (differentiable) augmentations. Fresh random draws for every batch.

    Args:
        policy: comma-separated augmentation groups: ``color`` (brightness, saturation,
            contrast), ``translation``, ``cutout`` (or ``brightness``/``saturation``/``contrast``
            alone). The paper's choice for few images is all three.
    """

    order = ORDER_AUGMENT

    def __init__(self, policy: str = DEFAULT_POLICY) -> None:
        parse_policy(policy)
        self.policy = policy

    def check_compatibility(self, ctx: StepContext, tricks: list[Trick]) -> None:
        _require_images(ctx, "DiffAugment")

    def transform_real(self, ctx: StepContext, real: Tensor) -> Tensor:
        return diff_augment(real, self.policy)

    def transform_fake(self, ctx: StepContext, fake: Tensor) -> Tensor:
        return diff_augment(fake, self.policy)


class AdaptiveProbability:
    """StyleGAN2-ADA's controller of a probability p (Karras et al. 2020), shared by
    :class:`AdaptiveAugment` and :class:`AdaptivePseudoAugment`.

    The heuristic r_t = E[sign(D(real))] is accumulated from the real logits of the D steps
    (:meth:`after_d_step`); every ``interval`` D steps p moves by sign(r_t - target) *
    (images seen) / adjustment_images, clamped to [0, 1]: up when D grows sure of the reals
    (overfitting), down otherwise. Under DDP, r_t is averaged over every rank and p moves by
    the global batch, so all ranks hold the same p.
    """

    def __init__(
        self, name: str, target: float, interval: int, adjustment_images: int, initial_p: float
    ) -> None:
        if not 0.0 <= target < 1.0:
            raise ConfigError(f"{name} target must be in [0, 1) (got {target}).")
        if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
            raise ConfigError(f"{name} interval must be an integer >= 1 (got {interval}).")
        if adjustment_images <= 0:
            raise ConfigError(f"{name} adjustment_images must be > 0 (got {adjustment_images}).")
        if not 0.0 <= initial_p <= 1.0:
            raise ConfigError(f"{name} initial_p must be in [0, 1] (got {initial_p}).")
        self.target = target
        self.interval = interval
        self.adjustment_images = adjustment_images
        self.p = float(initial_p)
        self.r_t: float | None = None
        self._reset_interval()
        self._d_steps = 0

    def _reset_interval(self) -> None:
        # A tensor on the logits' device once the first signs arrive: no sync per D step.
        self._sign_sum: Tensor | float = 0.0
        self._sign_count = 0
        self._images = 0

    def after_d_step(self, real_logits: Tensor) -> None:
        # D's logits on this step's reals (before its update). The mean of signs over the
        # interval is the mean of the per-step heuristics weighted by their logit counts.
        self._sign_sum = self._sign_sum + ada_heuristic(real_logits) * real_logits.numel()
        self._sign_count += real_logits.numel()
        self._images += len(real_logits)
        self._d_steps += 1
        if self._d_steps % self.interval or self._sign_count == 0:
            return
        self.r_t = average_values({"r_t": float(self._sign_sum) / self._sign_count})["r_t"]
        self.p = ada_update(
            self.p,
            self.r_t,
            self.target,
            batch_size=round(self._images * world()[1] / self.interval),
            interval=self.interval,
            adjustment_images=self.adjustment_images,
        )
        self._reset_interval()

    def state_dict(self) -> dict[str, Any]:
        return {
            "p": self.p,
            "r_t": self.r_t,
            "sign_sum": float(self._sign_sum),
            "sign_count": self._sign_count,
            "images": self._images,
            "d_steps": self._d_steps,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.p = float(state_dict["p"])
        self.r_t = state_dict["r_t"]
        self._sign_sum = float(state_dict["sign_sum"])
        self._sign_count = int(state_dict["sign_count"])
        self._images = int(state_dict["images"])
        self._d_steps = int(state_dict["d_steps"])


class _SteeredProbability(Trick):
    """A trick whose probability ``p`` an :class:`AdaptiveProbability` steers from the D steps'
    real logits; ``p`` and ``r_t`` are logged as ``<log_prefix>_p`` and ``<log_prefix>_r_t``."""

    log_prefix: str

    def __init__(
        self, target: float, interval: int, adjustment_images: int, initial_p: float
    ) -> None:
        self.controller = AdaptiveProbability(
            type(self).__name__, target, interval, adjustment_images, initial_p
        )
        self.target = target
        self.interval = interval
        self.adjustment_images = adjustment_images

    @property
    def p(self) -> float:
        return self.controller.p

    @p.setter
    def p(self, value: float) -> None:
        self.controller.p = float(value)

    @property
    def r_t(self) -> float | None:
        return self.controller.r_t

    def after_d_step(self, ctx: StepContext) -> None:
        self.controller.after_d_step(ctx.real_logits)

    def observe(self, ctx: StepContext, signals: StepSignals) -> None:
        ctx.log(f"{self.log_prefix}_p", float(self.p))
        if self.r_t is not None:
            ctx.log(f"{self.log_prefix}_r_t", float(self.r_t))

    def state_dict(self) -> dict[str, Any]:
        return self.controller.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.controller.load_state_dict(state_dict)


class AdaptiveAugment(_SteeredProbability):
    """Adaptive discriminator augmentation (Karras et al. 2020, StyleGAN2-ADA).

    Each augmentation of ``policy`` is applied to each real and fake sample, in D's and G's
    steps, with probability ``p``
    (:func:`~gan_tricks.functional.augment.augment_with_probability`), steered by
    :class:`AdaptiveProbability` from the real logits of the D steps (``ctx.real_logits``).

    The augmentations are DiffAugment's (colour, integer translation, cutout) rather than
    ADA's 18-transform pipeline (flips, rotations, scaling, colour, filtering). ``p`` and the
    last ``r_t`` are attributes, logged as ``ada_p`` and ``ada_r_t`` (``train/ada_p`` and
    ``train/ada_r_t`` under Lightning).

    Args:
        target: the r_t that p steers towards (0.6 in the paper).
        interval: D steps between two updates of p (4 in the paper).
        adjustment_images: real images over which p can move from 0 to 1 (500k in the paper,
            which trains far longer than our recipes).
        initial_p: p at the start.
        policy: the augmentations, as for :class:`DiffAugment`.
    """

    order = ORDER_AUGMENT
    log_prefix = "ada"

    def __init__(
        self,
        target: float = 0.6,
        interval: int = 4,
        adjustment_images: int = 50_000,
        initial_p: float = 0.0,
        policy: str = DEFAULT_POLICY,
    ) -> None:
        super().__init__(target, interval, adjustment_images, initial_p)
        parse_policy(policy)
        self.policy = policy

    def check_compatibility(self, ctx: StepContext, tricks: list[Trick]) -> None:
        _require_images(ctx, "AdaptiveAugment")
        if any(isinstance(trick, DiffAugment) for trick in tricks):
            raise ConfigError(
                "AdaptiveAugment and DiffAugment both augment what D sees; keep one of them."
            )

    def transform_real(self, ctx: StepContext, real: Tensor) -> Tensor:
        return augment_with_probability(real, self.p, self.policy)

    def transform_fake(self, ctx: StepContext, fake: Tensor) -> Tensor:
        return augment_with_probability(fake, self.p, self.policy)


class AdaptivePseudoAugment(_SteeredProbability):
    """Adaptive pseudo augmentation, APA (Jiang et al. 2021, "Deceive D: adaptive pseudo
    augmentation for GAN training with limited data").

    In each D step, each real sample is replaced with probability ``p`` by the (detached)
    fake of the same index (:func:`~gan_tricks.functional.augment.pseudo_augment`), so D is
    told that some fakes are real; ``p`` follows ADA's controller
    (:class:`AdaptiveProbability`) on D's logits of that mixed real batch, as in the authors'
    code. G's step is untouched. For points and images alike, and beside ADA or DiffAugment,
    which then augment the mixed batch. ``p`` and ``r_t`` are logged as ``apa_p`` and
    ``apa_r_t``.

    Args:
        target: the r_t that p steers towards (0.6 in the paper).
        interval: D steps between two updates of p (4 in the paper).
        adjustment_images: real images over which p can move from 0 to 1 (the paper's 500k
            at its scale; less for short runs).
        initial_p: p at the start.
    """

    order = ORDER_PSEUDO_AUGMENT
    log_prefix = "apa"

    def __init__(
        self,
        target: float = 0.6,
        interval: int = 4,
        adjustment_images: int = 50_000,
        initial_p: float = 0.0,
    ) -> None:
        super().__init__(target, interval, adjustment_images, initial_p)

    def transform_real(self, ctx: StepContext, real: Tensor) -> Tensor:
        if ctx.phase != "d" or ctx.fake_batch is None:
            return real
        return pseudo_augment(real, ctx.fake_batch, self.p)


class ConsistencyRegularization(Trick):
    """Balanced consistency regularization, bCR (Zhao et al. 2021, "Improved consistency
    regularization for GANs"; CR on reals alone: Zhang et al. 2020).

    Adds real_weight * mean((D(x) - D(T(x)))^2) + fake_weight * mean((D(G(z)) - D(T(G(z))))^2)
    to D's loss, on the batches D saw in its step. T is
    :func:`~gan_tricks.functional.augment.diff_augment` with ``policy`` for images and
    Gaussian jitter of std ``jitter`` for points. Unlike DiffAugment, D's loss itself still
    sees the un-augmented batches; only the penalty sees T(x). Costs two more D passes per
    D step.

    Args:
        real_weight: lambda_real (10 in the paper).
        fake_weight: lambda_fake (10 in the paper).
        policy: the image transform (the paper's best: translation and cutout-like erasing).
        jitter: std of the point transform, in data units (grid25's modes have std 0.05).
    """

    def __init__(
        self,
        real_weight: float = 10.0,
        fake_weight: float = 10.0,
        policy: str = "translation,cutout",
        jitter: float = 0.05,
    ) -> None:
        if real_weight < 0 or fake_weight < 0:
            raise ConfigError(
                "ConsistencyRegularization real_weight and fake_weight must be >= 0 "
                f"(got {real_weight} and {fake_weight})."
            )
        if jitter <= 0:
            raise ConfigError(f"ConsistencyRegularization jitter must be > 0 (got {jitter}).")
        parse_policy(policy)
        self.real_weight = real_weight
        self.fake_weight = fake_weight
        self.policy = policy
        self.jitter = jitter

    def transform(self, x: Tensor) -> Tensor:
        """T: DiffAugment for (N, C, H, W) images, Gaussian jitter for (N, d) points."""
        if x.dim() == 4:
            return diff_augment(x, self.policy)
        return gaussian_jitter(x, self.jitter)

    def d_penalty(self, ctx: StepContext) -> Tensor:
        discriminator = ctx.discriminator
        real, fake = ctx.real, ctx.fake
        real_logits, fake_logits = ctx.real_logits, ctx.fake_logits
        penalty = real_logits.new_zeros(())
        if self.real_weight:
            penalty = penalty + self.real_weight * consistency_penalty(
                discriminator, real, real_logits, self.transform
            )
        if self.fake_weight:
            penalty = penalty + self.fake_weight * consistency_penalty(
                discriminator, fake.detach(), fake_logits, self.transform
            )
        return penalty
