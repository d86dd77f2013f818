"""Regularizers of the discriminator: gradient penalties (WGAN-GP, WGAN-LP, R1, R2, DRAGAN),
StyleGAN2's lazy regularization, and the LeCam anchor.

Every function returns the *unweighted* penalty; the caller multiplies by its weight. A
hand-written loop adds, for example::

    loss_d = loss_d + 10.0 * gradient_penalty(D, real, fake, "wgan-gp")

The gradient penalties recompute D on the points they need (interpolates, perturbed reals, or
the batches themselves), so D must treat samples independently: BatchNorm makes one sample's
gradient depend on the others (Gulrajani et al. 2017 use layer norm in the critic instead).
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
from torch import Tensor, nn

from gan_tricks.errors import ConfigError

__all__ = [
    "PENALTY_KINDS",
    "approximate_r1",
    "dragan_points",
    "gradient_penalty",
    "input_gradients",
    "interpolate",
    "lazy_regularization_weight",
    "lecam_penalty",
    "update_ema",
]

# wgan-gp: Gulrajani et al. 2017; one-sided: Petzka et al. 2018; r1/r2: Mescheder et al. 2018;
# dragan: Kodali et al. 2017.
PenaltyKind = Literal["wgan-gp", "one-sided", "r1", "r2", "dragan"]
PENALTY_KINDS: tuple[PenaltyKind, ...] = get_args(PenaltyKind)


def _uniform(shape: tuple[int, ...], like: Tensor, generator: torch.Generator | None) -> Tensor:
    """U(0, 1) draws on ``like``'s device, from ``generator`` (on its own device) if given."""
    device = generator.device if generator is not None else like.device
    draws = torch.rand(shape, generator=generator, device=device, dtype=like.dtype)
    return draws.to(like.device)


def _per_sample_shape(batch: Tensor) -> tuple[int, ...]:
    # One draw per sample, broadcast over every other dimension: (N, 1) or (N, 1, 1, 1).
    return (len(batch),) + (1,) * (batch.dim() - 1)


def interpolate(real: Tensor, fake: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Random points on the lines between real and fake samples (Gulrajani et al. 2017).

    ``x_hat = e * real + (1 - e) * fake`` with one ``e ~ U(0, 1)`` per sample: WGAN-GP's
    sampling distribution, where the optimal critic has gradient norm 1.
    """
    if real.shape != fake.shape:
        raise ConfigError(
            f"the gradient penalty pairs real and fake samples, which must have the same shape "
            f"(got {tuple(real.shape)} and {tuple(fake.shape)}); give batches of equal size."
        )
    e = _uniform(_per_sample_shape(real), real, generator)
    return e * real.detach() + (1 - e) * fake.detach()


def dragan_points(
    real: Tensor, scale: float = 0.5, generator: torch.Generator | None = None
) -> Tensor:
    """DRAGAN's points near the data (Kodali et al. 2017, "On convergence and stability of GANs").

    As in the authors' code: a perturbed copy ``x_p = x + scale * std(x) * u``, ``u ~ U(0, 1)``
    elementwise and ``std`` over the whole batch, then ``x_hat = x + a * (x_p - x)`` with one
    ``a ~ U(0, 1)`` per sample.
    """
    real = real.detach()
    perturbed = real + scale * real.std() * _uniform(tuple(real.shape), real, generator)
    alpha = _uniform(_per_sample_shape(real), real, generator)
    return real + alpha * (perturbed - real)


def input_gradients(discriminator: nn.Module, inputs: Tensor) -> list[Tensor]:
    """Per-sample gradients of D's output with respect to its input, one (N, d) per column:
    what every gradient penalty (Gulrajani et al. 2017; Mescheder et al. 2018) measures.

    D's output is summed over the batch (samples are independent, so the gradient of the sum
    is each sample's own gradient) and, when D returns (N, k) logits, each column is one
    discriminator with its own gradient. ``create_graph=True`` keeps the graph so that a
    penalty on these gradients trains D (a double backward).
    """
    # enable_grad: the penalty can also be measured inside a no_grad block (e.g. for logging).
    # Autocast off: under bf16/fp16 mixed precision the input gradients (and the double backward
    # through them) would carry 8 bits of mantissa, too few for a penalty on their norm; D's
    # weights are fp32 masters, so this pass is the fp32 penalty, at fp32 cost.
    autocast_off = torch.autocast(inputs.device.type, enabled=False)
    weight = next(discriminator.parameters(), None)
    if weight is not None and inputs.is_floating_point():
        inputs = inputs.to(weight.dtype)  # a fake made under autocast is bf16
    with torch.enable_grad(), autocast_off:
        inputs = inputs.detach().requires_grad_(True)
        outputs = discriminator(inputs)
        columns = outputs.reshape(len(outputs), -1)
        gradients = []
        for index in range(columns.shape[1]):
            (gradient,) = torch.autograd.grad(columns[:, index].sum(), inputs, create_graph=True)
            gradients.append(gradient.reshape(len(gradient), -1))
    return gradients


def gradient_penalty(
    discriminator: nn.Module,
    real: Tensor | None,
    fake: Tensor | None = None,
    kind: str = "wgan-gp",
    *,
    generator: torch.Generator | None = None,
    dragan_scale: float = 0.5,
) -> Tensor:
    """A gradient penalty of D, unweighted, summed over D's columns when it returns (N, k).

    Kinds, with ``g = grad_x D(x)`` per sample:

    * ``wgan-gp``: ``E[(||g|| - 1)^2]`` at interpolates of real and fake (Gulrajani et al.
      2017, "Improved training of Wasserstein GANs"); usual weight 10.
    * ``one-sided``: ``E[max(0, ||g|| - 1)^2]`` at the same points: only gradients steeper
      than 1 are penalised (Petzka et al. 2018, "On the regularization of Wasserstein GANs",
      WGAN-LP).
    * ``r1``: ``E[||g||^2]`` at real samples (Mescheder et al. 2018, "Which training methods
      for GANs actually converge?"). The paper's regularizer is ``gamma / 2 * E[||g||^2]``:
      the 1/2 is not in this function; ``GradientPenalty`` applies it, so its ``weight`` is
      the paper's gamma.
    * ``r2``: the same at fake samples (Mescheder et al. 2018), also weighted gamma / 2.
    * ``dragan``: ``E[(||g|| - 1)^2]`` at points near the data (``dragan_points``; Kodali
      et al. 2017); usual weight 10.

    ``real`` may be None for ``r2`` and ``fake`` for ``r1`` and ``dragan``. Works for points
    (N, d) and images (N, C, H, W); draws from ``generator`` when given, else from torch's
    global RNG.
    """
    if kind not in PENALTY_KINDS:
        raise ConfigError(
            f"gradient penalty kind must be one of {', '.join(PENALTY_KINDS)} (got {kind!r})."
        )
    if kind in ("wgan-gp", "one-sided"):
        points = interpolate(real, fake, generator)
    elif kind == "dragan":
        points = dragan_points(real, dragan_scale, generator)
    else:
        points = real if kind == "r1" else fake
    gradients = input_gradients(discriminator, points)
    if kind in ("r1", "r2"):
        per_column = [g.pow(2).sum(dim=1).mean() for g in gradients]
    else:
        # The norm of a zero gradient has no derivative (sqrt at 0); the tiny offset keeps the
        # double backward finite where D is flat.
        norms = [torch.sqrt(g.pow(2).sum(dim=1) + 1e-12) for g in gradients]
        if kind == "one-sided":
            per_column = [torch.relu(n - 1).pow(2).mean() for n in norms]
        else:
            per_column = [(n - 1).pow(2).mean() for n in norms]
    return torch.stack(per_column).sum()


def approximate_r1(
    discriminator: nn.Module,
    real: Tensor,
    sigma: float = 0.01,
    real_logits: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Approximate R1 (Lin et al. 2025, "Diffusion adversarial post-training for one-step video
    generation", Seaweed-APT): ``E[||D(x) - D(x + sigma * eps)||^2]``, ``eps ~ N(0, I)``,
    unweighted and summed over D's columns.

    A finite difference instead of the input gradient: for small ``sigma`` it equals
    ``sigma^2 * E||grad_x D(x)||^2`` (R1's quantity) in expectation over ``eps``, but needs one
    more forward of D and no double backward, so it works under ``torch.compile`` and sharded
    training, where the exact penalties cannot. ``real_logits``: D's outputs on ``real`` when
    the caller already has them (the D step does), saving a forward.
    """
    if not sigma > 0:
        raise ConfigError(f"approximate R1 needs sigma > 0 (got {sigma}).")
    real = real.detach()
    device = generator.device if generator is not None else real.device
    noise = torch.randn(real.shape, generator=generator, device=device, dtype=real.dtype)
    perturbed = real + sigma * noise.to(real.device)
    if real_logits is None:
        real_logits = discriminator(real)
    here = real_logits.reshape(len(real), -1)
    there = discriminator(perturbed).reshape(len(real), -1)
    return (here - there).pow(2).mean(dim=0).sum()


def lazy_regularization_weight(weight: float, interval: int) -> float:
    """The weight of a penalty computed only every ``interval`` D steps (Karras et al. 2020).

    StyleGAN2's lazy regularization ("Analyzing and improving the image quality of StyleGAN",
    section 3.1) skips the costly penalty on most steps and multiplies it by ``interval`` on
    the steps where it runs, so that its average strength over training is unchanged.
    """
    if interval < 1:
        raise ConfigError(f"the regularization interval must be at least 1 (got {interval}).")
    return weight * interval


def lecam_penalty(
    real_logits: Tensor, fake_logits: Tensor, ema_real: Tensor, ema_fake: Tensor
) -> Tensor:
    """The LeCam regularizer (Tseng et al. 2021, "Regularizing generative adversarial networks
    under limited data"): ``E[(D(x) - ema_fake)^2] + E[(D(G(z)) - ema_real)^2]``.

    It pulls D's real logits towards the moving average of its fake logits and vice versa,
    which keeps D's predictions from drifting apart when it could memorise a small data set.
    This is the paper's squared form (eq. 3); the authors' code squares only the one-sided
    parts, ``relu(D(x) - ema_fake)^2`` and ``relu(ema_real - D(G(z)))^2``. With (N, k)
    logits, ``ema_real`` and ``ema_fake`` have shape (k,) and the penalties of the k
    discriminators are summed.
    """
    real_term = (real_logits - ema_fake).pow(2).mean(dim=0)
    fake_term = (fake_logits - ema_real).pow(2).mean(dim=0)
    return (real_term + fake_term).sum()


def update_ema(value: Tensor, ema: Tensor | None, decay: float) -> Tensor:
    """An exponential moving average: ``decay * ema + (1 - decay) * value``, detached.

    ``ema=None`` starts the average at ``value``, so it carries no bias towards zero (LeCam's
    anchors, Tseng et al. 2021, track D's mean logits with decay 0.99).
    """
    value = value.detach()
    if ema is None:
        return value.clone()
    return decay * ema.to(value.device) + (1 - decay) * value
