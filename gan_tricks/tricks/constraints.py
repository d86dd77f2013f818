"""Lipschitz constraints as tricks: WGAN's weight clipping, spectral normalization and
gradient normalization."""

from __future__ import annotations

from gan_tricks.engine.context import NetworkHolder, StepContext
from gan_tricks.errors import ConfigError
from gan_tricks.functional.constraints import (
    apply_gradient_normalization,
    apply_spectral_norm,
    clip_weights,
    has_gradient_normalization,
    has_spectral_norm,
)
from gan_tricks.tricks.base import Trick
from gan_tricks.tricks.penalties import BATCH_NORMS, GradientPenalty

__all__ = ["GradientNormalization", "SpectralNorm", "WeightClipping"]


class WeightClipping(Trick):
    """Clamp D's parameters to [-clip_value, clip_value] after every D step.

    WGAN's Lipschitz constraint (Arjovsky et al. 2017, "Wasserstein GAN": c = 0.01, RMSprop
    lr 5e-5, 5 critic steps); see ``gan_tricks.functional.constraints.clip_weights``. It
    cannot be combined with another Lipschitz constraint on D (spectral norm, a gradient
    penalty): the two would pull D's weights towards different sets.
    """

    def __init__(self, clip_value: float = 0.01) -> None:
        if not clip_value > 0:
            raise ConfigError(f"WeightClipping clip_value must be > 0 (got {clip_value}).")
        self.clip_value = clip_value

    def check_compatibility(self, ctx: StepContext, tricks: list[Trick]) -> None:
        # SpectralNorm's configure_networks has run by now, so the structure tells.
        if has_spectral_norm(ctx.discriminator):
            raise ConfigError(
                "WeightClipping and spectral norm on the discriminator are two Lipschitz "
                "constraints that fight each other; keep one of them."
            )
        if has_gradient_normalization(ctx.discriminator):
            raise ConfigError(
                "WeightClipping and GradientNormalization are two Lipschitz constraints that "
                "fight each other; keep one of them."
            )
        if any(isinstance(trick, GradientPenalty) for trick in tricks):
            raise ConfigError(
                "WeightClipping and GradientPenalty are two Lipschitz constraints that fight "
                "each other; drop WeightClipping (WGAN-GP replaced it)."
            )

    def after_d_step(self, ctx: StepContext) -> None:
        clip_weights(ctx.discriminator, self.clip_value)


class SpectralNorm(Trick):
    """Spectral normalization of every linear and conv layer of D (and optionally G).

    Miyato et al. 2018, "Spectral normalization for generative adversarial networks" (D);
    Zhang et al. 2019 (SAGAN) also normalise G. See
    ``gan_tricks.functional.constraints.apply_spectral_norm``. The change happens in
    ``configure_networks``, when the engine is built (before the optimizers are), so a
    finished run loaded for sampling gets the same structure and the checkpoint's weights
    fit. It also covers G's moving-average copy when one already exists.
    """

    def __init__(
        self, discriminator: bool = True, generator: bool = False, n_power_iterations: int = 1
    ) -> None:
        if not (discriminator or generator):
            raise ConfigError(
                "SpectralNorm with discriminator and generator both false does nothing; "
                "set at least one of them to true."
            )
        if n_power_iterations < 1:
            raise ConfigError(
                f"SpectralNorm n_power_iterations must be >= 1 (got {n_power_iterations})."
            )
        self.discriminator = discriminator
        self.generator = generator
        self.n_power_iterations = n_power_iterations

    def configure_networks(self, networks: NetworkHolder, ctx: StepContext | None = None) -> None:
        normalised = []
        if self.discriminator:
            normalised.append(networks.discriminator)
        if self.generator:
            normalised.append(networks.generator)
            if getattr(networks, "generator_ema", None) is not None:
                normalised.append(networks.generator_ema)
        for network in normalised:
            apply_spectral_norm(network, n_power_iterations=self.n_power_iterations)


class GradientNormalization(Trick):
    """Gradient normalization of D (Wu et al. 2021, GN-GAN): D's output becomes ``f(x) /
    (||grad_x f(x)|| + |f(x)|)``, a Lipschitz constraint on the whole network with no layer
    changed (:func:`~gan_tricks.functional.constraints.gradient_normalized`).

    Applied in ``configure_networks`` by replacing D's ``forward``, so D keeps its class and
    its checkpoint keys. D's logits then lie in (-1, 1): the paper trains them with the usual
    losses (non-saturating, hinge). Each of D's forwards costs a backward more, and training
    through it a double backward, which ``torch.compile`` cannot do.
    """

    def configure_networks(self, networks: NetworkHolder, ctx: StepContext | None = None) -> None:
        apply_gradient_normalization(networks.discriminator)

    def check_compatibility(self, ctx: StepContext, tricks: list[Trick]) -> None:
        if ctx.compiled:
            raise ConfigError(
                "GradientNormalization differentiates D twice, which torch.compile cannot do; "
                "set model.compile false."
            )
        if any(isinstance(m, BATCH_NORMS) for m in ctx.discriminator.modules()):
            raise ConfigError(
                "GradientNormalization needs each sample's own input gradient, which "
                "BatchNorm in D mixes across the batch; use norm: layer or none."
            )
