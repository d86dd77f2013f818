"""Penalties on the discriminator as tricks: gradient penalties (WGAN-GP, WGAN-LP, R1, R2,
DRAGAN) with StyleGAN2's lazy regularization, approximate R1, and the LeCam regularizer."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from gan_tricks.distributed import average_tensors
from gan_tricks.engine.context import StepContext
from gan_tricks.errors import ConfigError
from gan_tricks.functional.penalties import (
    PENALTY_KINDS,
    PenaltyKind,
    approximate_r1,
    gradient_penalty,
    lazy_regularization_weight,
    lecam_penalty,
    update_ema,
)
from gan_tricks.tricks.base import Trick

__all__ = ["ApproximateR1", "GradientPenalty", "LeCam"]

# Normalizations that mix the samples of a batch, so one sample's gradient depends on others.
BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)

# Mescheder et al. 2018 write R1 and R2 as gamma / 2 * E||grad D||^2.
_HALF_WEIGHTED_KINDS = ("r1", "r2")


class _LazyPenalty(Trick):
    """A D penalty computed on every ``every``-th D step only (StyleGAN2's lazy
    regularization); D steps are counted here and kept in checkpoints, so a resumed run keeps
    the rhythm. Subclasses give :meth:`term`, already weighted."""

    every: int = 1
    d_steps: int = 0

    def term(self, ctx: StepContext) -> Tensor:
        raise NotImplementedError

    def d_penalty(self, ctx: StepContext) -> Tensor | None:
        due = self.d_steps % self.every == 0
        self.d_steps += 1
        return self.term(ctx) if due else None

    def state_dict(self) -> dict[str, Any]:
        return {"d_steps": self.d_steps}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.d_steps = int(state_dict["d_steps"])


class GradientPenalty(_LazyPenalty):
    """A gradient penalty added to D's loss, optionally lazy.

    Args:
        kind: ``wgan-gp`` (Gulrajani et al. 2017, "Improved training of Wasserstein GANs"),
            ``one-sided`` (Petzka et al. 2018, WGAN-LP), ``r1`` / ``r2`` (Mescheder et al.
            2018, "Which training methods for GANs actually converge?") or ``dragan`` (Kodali
            et al. 2017); see ``gan_tricks.functional.penalties.gradient_penalty``.
        weight: lambda for ``wgan-gp``, ``one-sided`` and ``dragan`` (the papers use 10);
            gamma for ``r1`` and ``r2``, whose added term is ``gamma / 2 * E||grad||^2`` as in
            Mescheder et al. (StyleGAN2 uses 10 on FFHQ; small 2D data wants about 0.1).
        every: lazy regularization (Karras et al. 2020, StyleGAN2): the penalty runs on every
            ``every``-th D step only, multiplied by ``every`` there; 1 runs it on every step.
        dragan_scale: for ``dragan``, how far the perturbed points go, in standard deviations of
            the real batch (0.5 in the authors' code, where the batch is one mode's worth of
            data; on a mixture of far-apart modes the batch's spread is the distance between
            modes, and a smaller scale keeps the points near the data).

    The penalty is computed on exactly the batches D saw in this step, after every transform
    (augmentation, noise, packing). D steps are counted here and saved in checkpoints, so a
    resumed run keeps the lazy rhythm.
    """

    def __init__(
        self,
        kind: PenaltyKind = "wgan-gp",
        weight: float = 10.0,
        every: int = 1,
        dragan_scale: float = 0.5,
    ) -> None:
        if kind not in PENALTY_KINDS:
            raise ConfigError(
                f"GradientPenalty kind must be one of {', '.join(PENALTY_KINDS)} (got {kind!r})."
            )
        if not weight > 0:
            raise ConfigError(f"GradientPenalty weight must be > 0 (got {weight}).")
        if not isinstance(every, int) or every < 1:
            raise ConfigError(f"GradientPenalty every must be an integer >= 1 (got {every!r}).")
        if not dragan_scale > 0:
            raise ConfigError(f"GradientPenalty dragan_scale must be > 0 (got {dragan_scale}).")
        self.kind = kind
        self.weight = weight
        self.every = every
        self.dragan_scale = dragan_scale
        self.d_steps = 0

    @property
    def scale(self) -> float:
        """What the unweighted penalty is multiplied by on the steps where it runs."""
        weight = self.weight / 2 if self.kind in _HALF_WEIGHTED_KINDS else self.weight
        return lazy_regularization_weight(weight, self.every)

    def check_compatibility(self, ctx: StepContext, tricks: list[Trick]) -> None:
        if ctx.compiled:
            raise ConfigError(
                f"GradientPenalty ({self.kind}) differentiates D twice, which torch.compile "
                "cannot do; set model.compile false (lazy regularization, every: 4 or more, "
                "recovers much of the cost)."
            )
        if any(isinstance(m, BATCH_NORMS) for m in ctx.discriminator.modules()):
            raise ConfigError(
                f"GradientPenalty ({self.kind}) needs a discriminator without BatchNorm, which "
                "makes one sample's gradient depend on the others; use norm: layer or none."
            )

    def term(self, ctx: StepContext) -> Tensor:
        penalty = gradient_penalty(
            ctx.discriminator, ctx.real, ctx.fake, self.kind, dragan_scale=self.dragan_scale
        )
        return self.scale * penalty


class ApproximateR1(_LazyPenalty):
    """Approximate R1 (Lin et al. 2025, Seaweed-APT): D's outputs on the reals it saw and on
    the same reals moved by ``sigma * eps`` are pulled together
    (:func:`~gan_tricks.functional.penalties.approximate_r1`), which smooths D around the data
    as R1 does, with one more forward of D and no double backward: it works with
    ``model.compile true``.

    Args:
        weight: R1's gamma: the term added is ``gamma / 2 * E||D(x) - D(x + sigma eps)||^2 /
            sigma^2``, which for small ``sigma`` is in expectation R1's ``gamma / 2 *
            E||grad D||^2``, so the weight of an R1 recipe carries over.
        sigma: the perturbation's standard deviation, in data units (images in [-1, 1]).
        every: lazy regularization as for :class:`GradientPenalty`.
    """

    def __init__(self, weight: float = 1.0, sigma: float = 0.01, every: int = 1) -> None:
        if not weight > 0:
            raise ConfigError(f"ApproximateR1 weight must be > 0 (got {weight}).")
        if not sigma > 0:
            raise ConfigError(f"ApproximateR1 sigma must be > 0 (got {sigma}).")
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ConfigError(f"ApproximateR1 every must be an integer >= 1 (got {every!r}).")
        self.weight = weight
        self.sigma = sigma
        self.every = every
        self.d_steps = 0

    @property
    def scale(self) -> float:
        return lazy_regularization_weight(self.weight / (2 * self.sigma**2), self.every)

    def check_compatibility(self, ctx: StepContext, tricks: list[Trick]) -> None:
        if any(isinstance(m, BATCH_NORMS) for m in ctx.discriminator.modules()):
            raise ConfigError(
                "ApproximateR1 compares D's output on each real with the same real moved a "
                "little, which BatchNorm's batch statistics blur; use norm: layer or none."
            )

    def term(self, ctx: StepContext) -> Tensor:
        penalty = approximate_r1(ctx.discriminator, ctx.real, self.sigma, ctx.real_logits)
        return self.scale * penalty


class LeCam(Trick):
    """The LeCam regularizer (Tseng et al. 2021, "Regularizing generative adversarial networks
    under limited data").

    Keeps exponential moving averages of D's mean logits on real and on fake batches, and adds
    ``weight * (E[(D(x) - ema_fake)^2] + E[(D(G(z)) - ema_real)^2])`` to D's loss
    (``gan_tricks.functional.penalties.lecam_penalty``). The averages are updated with this
    step's logits before the penalty is computed, as in the authors' code, and start at the
    first step's values. The paper uses weight 0.3 for limited data and 0.01 otherwise.

    With the Wasserstein loss the anchor bounds the critic's gap E[D(x)] - E[D(G(z))] (to about
    1 / (4 * weight)) instead of a probability, which works but is not what the paper tested.
    """

    def __init__(self, weight: float = 0.01, decay: float = 0.99) -> None:
        if not weight > 0:
            raise ConfigError(f"LeCam weight must be > 0 (got {weight}).")
        if not 0 <= decay < 1:
            raise ConfigError(f"LeCam decay must be in [0, 1) (got {decay}); 0.99 is usual.")
        self.weight = weight
        self.decay = decay
        self.ema_real: Tensor | None = None
        self.ema_fake: Tensor | None = None

    def d_penalty(self, ctx: StepContext) -> Tensor:
        real_logits, fake_logits = ctx.real_logits, ctx.fake_logits
        # The anchors follow the global batch's means under DDP, the same on every rank.
        real_mean, fake_mean = average_tensors(real_logits.mean(dim=0), fake_logits.mean(dim=0))
        self.ema_real = update_ema(real_mean, self.ema_real, self.decay)
        self.ema_fake = update_ema(fake_mean, self.ema_fake, self.decay)
        return self.weight * lecam_penalty(real_logits, fake_logits, self.ema_real, self.ema_fake)

    def state_dict(self) -> dict[str, Any]:
        return {"ema_real": self.ema_real, "ema_fake": self.ema_fake}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.ema_real = state_dict["ema_real"]
        self.ema_fake = state_dict["ema_fake"]
