"""Differentiable augmentation of what D sees, and the adaptive probability that doses it.

Zhao et al. 2020, "Differentiable augmentation for data-efficient GAN training" (DiffAugment):
augment real *and* fake images with the same random, differentiable transforms in every D and
G evaluation, so D cannot memorise a small data set and G still gets gradients through them.
Karras et al. 2020, "Training generative adversarial networks with limited data"
(StyleGAN2-ADA): apply each augmentation only with probability p, and steer p with an
overfitting heuristic measured on D's outputs.

Every function takes an optional ``generator`` (a ``torch.Generator``); without one the random
draws come from torch's global RNG on the input's device.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from gan_tricks.errors import ConfigError
from gan_tricks.functional.noise import add_gaussian_noise

# DiffAugment's reference settings: shift by up to 1/8 of the size, cut out half of it.
TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5


def _uniform(shape: tuple[int, ...], x: Tensor, generator: torch.Generator | None) -> Tensor:
    """U(0, 1) draws on ``x``'s device, from ``generator`` (on its own device) or the global RNG."""
    device = generator.device if generator is not None else x.device
    draws = torch.rand(shape, generator=generator, device=device, dtype=x.dtype)
    return draws.to(x.device)


def _integers(
    low: int, high: int, count: int, x: Tensor, generator: torch.Generator | None
) -> Tensor:
    """``count`` integers uniform in [low, high] (inclusive) on ``x``'s device."""
    device = generator.device if generator is not None else x.device
    draws = torch.randint(low, high + 1, (count,), generator=generator, device=device)
    return draws.to(x.device)


def random_brightness(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Add U(-0.5, 0.5) to every pixel of a sample, one draw per sample (DiffAugment, color)."""
    return x + (_uniform((len(x), 1, 1, 1), x, generator) - 0.5)


def random_saturation(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Scale each pixel's distance to its mean over channels by U(0, 2) (DiffAugment, color).

    A one-channel image equals its channel mean, so this leaves grey images unchanged.
    """
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (_uniform((len(x), 1, 1, 1), x, generator) * 2) + mean


def random_contrast(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Scale each sample's distance to its mean over all pixels by U(0.5, 1.5) (DiffAugment)."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_uniform((len(x), 1, 1, 1), x, generator) + 0.5) + mean


def random_translation(
    x: Tensor, generator: torch.Generator | None = None, ratio: float = TRANSLATION_RATIO
) -> Tensor:
    """Shift each sample by whole pixels, up to ``ratio`` of its size each way, filling with 0.

    Shifts are drawn uniformly from {-s, ..., s} with s = round(ratio * size), independently
    for rows and columns (DiffAugment's ``rand_translation``). Output pixel (i, j) is input
    pixel (i - dy, j - dx), or 0 where that falls outside the image.
    """
    n, _, height, width = x.shape
    shift_h, shift_w = int(height * ratio + 0.5), int(width * ratio + 0.5)
    dy = _integers(-shift_h, shift_h, n, x, generator)
    dx = _integers(-shift_w, shift_w, n, x, generator)
    # Pad by the largest shift, then gather each sample's window: indexing keeps the gradient.
    padded = torch.nn.functional.pad(x, (shift_w, shift_w, shift_h, shift_h))
    rows = torch.arange(height, device=x.device)[None, :] - dy[:, None] + shift_h  # (N, H)
    cols = torch.arange(width, device=x.device)[None, :] - dx[:, None] + shift_w  # (N, W)
    samples = torch.arange(n, device=x.device)[:, None, None]
    # Advanced indices around a slice put their dims first: (N, H, W, C) -> (N, C, H, W).
    return padded[samples, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


def random_cutout(
    x: Tensor, generator: torch.Generator | None = None, ratio: float = CUTOUT_RATIO
) -> Tensor:
    """Zero a rectangle of ``ratio`` of the size (a square on square images) in each sample.

    The square's side is round(ratio * size) and it lies wholly inside the image at a uniform
    position, so every sample loses exactly the same area. DiffAugment's reference code lets
    the square hang over the border (its centre is uniform over the image), which hides a
    varying, smaller area; we keep the stated size exact.
    """
    n, _, height, width = x.shape
    cut_h, cut_w = int(height * ratio + 0.5), int(width * ratio + 0.5)
    top = _integers(0, height - cut_h, n, x, generator)
    left = _integers(0, width - cut_w, n, x, generator)
    rows = torch.arange(height, device=x.device)[None, :]
    cols = torch.arange(width, device=x.device)[None, :]
    inside_rows = (rows >= top[:, None]) & (rows < top[:, None] + cut_h)  # (N, H)
    inside_cols = (cols >= left[:, None]) & (cols < left[:, None] + cut_w)  # (N, W)
    keep = ~(inside_rows[:, :, None] & inside_cols[:, None, :])
    return x * keep[:, None].to(x.dtype)


Augmentation = Callable[[Tensor, "torch.Generator | None"], Tensor]

# A policy names groups of augmentations; "color" is DiffAugment's three colour transforms.
AUGMENTATIONS: dict[str, tuple[Augmentation, ...]] = {
    "color": (random_brightness, random_saturation, random_contrast),
    "brightness": (random_brightness,),
    "saturation": (random_saturation,),
    "contrast": (random_contrast,),
    "translation": (random_translation,),
    "cutout": (random_cutout,),
}


def parse_policy(policy: str) -> tuple[Augmentation, ...]:
    """The augmentations of a comma-separated policy such as ``"color,translation,cutout"``."""
    names = [name.strip() for name in str(policy).split(",") if name.strip()]
    unknown = [name for name in names if name not in AUGMENTATIONS]
    if unknown or not names:
        raise ConfigError(
            f"augmentation policy {policy!r} is not valid; use a comma-separated list of "
            f"{', '.join(AUGMENTATIONS)}."
        )
    return tuple(fn for name in names for fn in AUGMENTATIONS[name])


def _check_images(x: Tensor) -> None:
    if x.dim() != 4:
        raise ConfigError(
            f"DiffAugment needs images shaped (N, C, H, W) but got shape {tuple(x.shape)}; "
            "use it only with image data."
        )


def diff_augment(
    x: Tensor, policy: str = "color,translation,cutout", generator: torch.Generator | None = None
) -> Tensor:
    """DiffAugment (Zhao et al. 2020): random, differentiable augmentations of an image batch.

    Applies the policy's augmentations in order, each with fresh per-sample draws: brightness
    (+U(-0.5, 0.5)), saturation (xU(0, 2) around the channel mean), contrast (xU(0.5, 1.5)
    around the image mean), translation (integer shift up to 1/8 of the size, zero fill) and
    cutout (a zeroed square of half the size). Gradients flow to ``x``, so G learns through
    them when fakes are augmented. Apply it to real and fake alike, in D's and G's steps.
    """
    _check_images(x)
    for augmentation in parse_policy(policy):
        x = augmentation(x, generator)
    return x


def augment_with_probability(
    x: Tensor,
    p: float,
    policy: str = "color,translation,cutout",
    generator: torch.Generator | None = None,
) -> Tensor:
    """Apply each augmentation of the policy to each sample independently with probability p.

    StyleGAN2-ADA's dosing (Karras et al. 2020, section 2.3): every transform of the pipeline
    is skipped or applied per sample, so a share (1 - p)^k of the batch stays clean and, for
    p below about 0.8, G cannot learn to produce the augmentations ("leaking"). p = 1 gives
    exactly :func:`diff_augment` with the same random draws; p = 0 returns ``x``.
    """
    _check_images(x)
    if not 0.0 <= p <= 1.0:
        raise ConfigError(f"the augmentation probability must be in [0, 1] (got {p}).")
    augmentations = parse_policy(policy)
    if p == 0.0:
        return x
    for augmentation in augmentations:
        augmented = augmentation(x, generator)
        if p < 1.0:
            chosen = _uniform((len(x), 1, 1, 1), x, generator) < p
            augmented = torch.where(chosen, augmented, x)
        x = augmented
    return x


def pseudo_augment(
    real: Tensor, fake: Tensor, p: float, generator: torch.Generator | None = None
) -> Tensor:
    """APA's batch for D's real side (Jiang et al. 2021, "Deceive D: adaptive pseudo
    augmentation for GAN training with limited data", eq. 3): each real sample is replaced,
    with probability ``p``, by the generated sample of the same index, detached.

    D is then told that some fakes are real, which keeps it from growing over-confident on a
    small training set; G gets no gradient through them. Works for points and images.
    """
    if not 0.0 <= p <= 1.0:
        raise ConfigError(f"the pseudo-augmentation probability must be in [0, 1] (got {p}).")
    if real.shape != fake.shape:
        raise ConfigError(
            "adaptive pseudo augmentation shows fakes as reals, one for one, so the batches "
            f"must have the same shape (got {tuple(real.shape)} and {tuple(fake.shape)})."
        )
    if p == 0.0:
        return real
    chosen = _uniform((len(real),) + (1,) * (real.dim() - 1), real, generator) < p
    return torch.where(chosen, fake.detach().to(real.dtype), real)


def ada_heuristic(real_logits: Tensor) -> Tensor:
    """StyleGAN2-ADA's overfitting heuristic r_t = E[sign(D(real))] (Karras et al. 2020).

    0 when D cannot tell training reals from fakes, 1 when it is sure of every real: an
    overfitting D grows confident on the training set. Returns a scalar tensor.
    """
    return torch.sign(real_logits.detach()).float().mean()


def ada_update(
    p: float,
    r_t: float,
    target: float = 0.6,
    batch_size: int = 64,
    interval: int = 4,
    adjustment_images: int = 50_000,
) -> float:
    """The next augmentation probability (Karras et al. 2020, StyleGAN2-ADA).

    p moves by sign(r_t - target) * (batch_size * interval) / adjustment_images, so it can
    rise from 0 to 1 within ``adjustment_images`` real images shown (500k in the paper), and
    stays in [0, 1]. Call it every ``interval`` D steps with r_t averaged over them.
    """
    step = (batch_size * interval) / adjustment_images
    direction = (r_t > target) - (r_t < target)
    return min(1.0, max(0.0, p + direction * step))


def gaussian_jitter(x: Tensor, std: float, generator: torch.Generator | None = None) -> Tensor:
    """``x`` plus N(0, std^2) noise: the consistency transform for 2D points and features.

    Small enough not to move a point off its mode, so D should not change its mind about it
    (the point-cloud analogue of a translation for images, as in Zhao et al. 2021's bCR).
    """
    return add_gaussian_noise(x, std, generator)


def consistency_penalty(
    discriminator: Callable[[Tensor], Tensor],
    x: Tensor,
    logits: Tensor,
    augment: Callable[[Tensor], Tensor],
) -> Tensor:
    """mean((D(x) - D(T(x)))^2): D should not change its mind under a harmless transform T.

    Zhang et al. 2020, "Consistency regularization for GANs" (CR) on reals; Zhao et al. 2021,
    "Improved consistency regularization for GANs" (balanced CR, bCR) applies it to the real
    and the fake batch alike. ``logits`` are D(x) as computed for D's loss (keep their graph:
    the penalty pulls both outputs together); the mean runs over samples and, for (N, k)
    logits, over the discriminators.
    """
    augmented_logits = discriminator(augment(x)).reshape(logits.shape)
    return (logits - augmented_logits).pow(2).mean()
