"""Adversarial losses as pure (D loss, G loss) function pairs working on D's raw logits.

Every D loss has the signature ``d_loss(real_logits, fake_logits, real_target, fake_target)``
and every G loss ``g_loss(fake_logits, real_logits)``. Targets are floats or tensors shaped
like the logits (soft and noisy labels); losses that have no notion of a target ignore them
and say so through ``GANLoss.uses_targets``. Only the relativistic G loss reads
``real_logits``; the others accept it so that one call site serves every loss.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from gan_tricks.errors import ConfigError

Target = float | Tensor
LossName = Literal[
    "minimax",
    "nonsaturating",
    "wasserstein",
    "hinge",
    "least_squares",
    "relativistic_average",
    "relativistic_pairing",
]


def _bce(logits: Tensor, target: Target) -> Tensor:
    if not isinstance(target, Tensor):
        target = torch.full_like(logits, float(target))
    return F.binary_cross_entropy_with_logits(logits, target)


def bce_d_loss(
    real_logits: Tensor, fake_logits: Tensor, real_target: Target = 1.0, fake_target: Target = 0.0
) -> Tensor:
    """D's side of the original GAN (Goodfellow et al. 2014): -log D(x) - log(1 - D(G(z)))."""
    return _bce(real_logits, real_target) + _bce(fake_logits, fake_target)


def minimax_g_loss(fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
    """G minimises log(1 - D(G(z))) (Goodfellow et al. 2014).

    Its gradient vanishes when D confidently rejects the fakes, which is why the
    non-saturating loss exists; it is kept to show that failure.
    """
    # log(1 - sigmoid(x)) = -softplus(x)
    return -F.softplus(fake_logits).mean()


def nonsaturating_g_loss(fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
    """G minimises -log D(G(z)) ("flip the labels when training G", Goodfellow et al. 2014)."""
    return F.softplus(-fake_logits).mean()


def wasserstein_d_loss(
    real_logits: Tensor, fake_logits: Tensor, real_target: Target = 1.0, fake_target: Target = 0.0
) -> Tensor:
    """The critic maximises E[D(x)] - E[D(G(z))] (WGAN, Arjovsky et al. 2017)."""
    return fake_logits.mean() - real_logits.mean()


def wasserstein_g_loss(fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
    return -fake_logits.mean()


def hinge_d_loss(
    real_logits: Tensor, fake_logits: Tensor, real_target: Target = 1.0, fake_target: Target = 0.0
) -> Tensor:
    """Hinge loss (Lim & Ye 2017; used by SNGAN and BigGAN)."""
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


def hinge_g_loss(fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
    return -fake_logits.mean()


def least_squares_d_loss(
    real_logits: Tensor, fake_logits: Tensor, real_target: Target = 1.0, fake_target: Target = 0.0
) -> Tensor:
    """LSGAN with a = 0, b = c = 1 (Mao et al. 2017): 1/2 (D(x) - b)^2 + 1/2 (D(G(z)) - a)^2."""
    return (
        0.5 * ((real_logits - real_target) ** 2).mean()
        + 0.5 * ((fake_logits - fake_target) ** 2).mean()
    )


def least_squares_g_loss(fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
    return 0.5 * ((fake_logits - 1.0) ** 2).mean()


def relativistic_average_d_loss(
    real_logits: Tensor, fake_logits: Tensor, real_target: Target = 1.0, fake_target: Target = 0.0
) -> Tensor:
    """RaSGAN (Jolicoeur-Martineau 2019): is a real sample more real than the average fake?"""
    return _bce(real_logits - fake_logits.mean(), real_target) + _bce(
        fake_logits - real_logits.mean(), fake_target
    )


def relativistic_average_g_loss(fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
    if real_logits is None:
        raise ValueError("the relativistic average G loss needs D's logits on a real batch.")
    return _bce(fake_logits - real_logits.mean(), 1.0) + _bce(real_logits - fake_logits.mean(), 0.0)


def _paired(real_logits: Tensor, fake_logits: Tensor) -> None:
    if real_logits.shape != fake_logits.shape:
        raise ConfigError(
            "the relativistic pairing loss pairs each real sample with one fake, so D's real "
            f"and fake logits must have the same shape (got {tuple(real_logits.shape)} and "
            f"{tuple(fake_logits.shape)}); give batches of equal size."
        )


def relativistic_pairing_d_loss(
    real_logits: Tensor, fake_logits: Tensor, real_target: Target = 1.0, fake_target: Target = 0.0
) -> Tensor:
    """RpGAN (Jolicoeur-Martineau 2019; the loss of R3GAN, Huang et al. 2024, eq. 3):
    ``E[softplus(-(D(x) - D(G(z))))]`` over pairs of one real and one fake sample.

    Each real is compared with its own fake rather than with the fakes' mean: the landscape has
    no local minimum in which G covers only some modes (Sun et al. 2020), which is why R3GAN
    pairs it with R1 and R2 (``GradientPenalty`` kinds ``r1`` and ``r2``).
    """
    _paired(real_logits, fake_logits)
    return F.softplus(fake_logits - real_logits).mean()


def relativistic_pairing_g_loss(fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
    """G's side of RpGAN: ``E[softplus(-(D(G(z)) - D(x)))]``, the same pairs the other way."""
    if real_logits is None:
        raise ValueError("the relativistic pairing G loss needs D's logits on a real batch.")
    _paired(real_logits, fake_logits)
    return F.softplus(real_logits - fake_logits).mean()


@dataclass(frozen=True)
class GANLoss:
    """A named (D loss, G loss) pair and the facts the training step needs about it."""

    name: str
    d_loss: Callable[..., Tensor]
    g_loss: Callable[..., Tensor]
    uses_targets: bool
    g_needs_real: bool = False


LOSSES: dict[str, GANLoss] = {
    loss.name: loss
    for loss in (
        GANLoss("minimax", bce_d_loss, minimax_g_loss, uses_targets=True),
        GANLoss("nonsaturating", bce_d_loss, nonsaturating_g_loss, uses_targets=True),
        GANLoss("wasserstein", wasserstein_d_loss, wasserstein_g_loss, uses_targets=False),
        GANLoss("hinge", hinge_d_loss, hinge_g_loss, uses_targets=False),
        GANLoss("least_squares", least_squares_d_loss, least_squares_g_loss, uses_targets=True),
        GANLoss(
            "relativistic_average",
            relativistic_average_d_loss,
            relativistic_average_g_loss,
            uses_targets=True,
            g_needs_real=True,
        ),
        GANLoss(
            "relativistic_pairing",
            relativistic_pairing_d_loss,
            relativistic_pairing_g_loss,
            uses_targets=False,
            g_needs_real=True,
        ),
    )
}


def get_loss(name: str) -> GANLoss:
    """The loss pair registered under ``name`` (one of ``LOSSES``)."""
    try:
        return LOSSES[name]
    except KeyError:
        raise ConfigError(f"loss must be one of {', '.join(LOSSES)} (got {name!r}).") from None


# How G's losses against several discriminators become one (``combine_discriminator_losses``).
DISCRIMINATOR_REDUCTIONS = ("mean", "max", "softmax")


def combine_discriminator_losses(
    losses: Tensor, reduction: str = "mean", temperature: float = 1.0
) -> Tensor:
    """One G loss from G's losses against k discriminators, shape (k,).

    ``mean`` is the plain ensemble, ``max`` trains G against its harshest critic and
    ``softmax`` is GMAN's soft maximum (Durugkar et al. 2017, "Generative multi-adversarial
    networks"): weights softmax(loss / temperature), held constant in the backward pass, so
    the worse a critic's verdict the more it counts. One loss passes through unchanged.
    """
    if reduction == "mean":
        return losses.mean()
    if reduction == "max":
        return losses.max()
    if reduction == "softmax":
        weights = torch.softmax(losses.detach() / temperature, dim=0)
        return (weights * losses).sum()
    raise ConfigError(
        f"reduction must be one of {', '.join(DISCRIMINATOR_REDUCTIONS)} (got {reduction!r})."
    )
