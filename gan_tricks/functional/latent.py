"""Latent codes: how z is drawn, and how to walk between two codes."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

import torch
from torch import Tensor

from gan_tricks.errors import ConfigError

Distribution = Literal["gaussian", "uniform", "spherical"]
DISTRIBUTIONS: tuple[Distribution, ...] = get_args(Distribution)


@dataclass
class Latent:
    """The latent specification of a generator: its dimension and sampling distribution.

    ``gaussian`` is N(0, I), the folklore's advice ("sample z from a Gaussian", ganhacks);
    ``uniform`` is U(-1, 1)^dim, DCGAN's original choice; ``spherical`` draws a Gaussian and
    projects it onto the sphere of radius sqrt(dim), where almost all Gaussian mass lies in
    high dimension (White 2016, "Sampling generative networks").

    ``categories`` K > 0 prepends a one-hot code of a uniformly drawn category to the
    continuous part, so G sees ``K + dim`` inputs (set the generator's ``latent_dim`` to
    ``size``). Each category can then map to its own region of the data: a mixture of K
    generators that share every weight but the first layer's (MGAN's parameter sharing, Hoang
    et al. 2018; InfoGAN's categorical code, Chen et al. 2016). A disconnected target, such
    as the 25 Gaussians of grid25, needs no samples bridging its modes then.
    :func:`latent_categories` reads the category back; ``MixtureClassifier`` keeps categories
    apart.

    ``codes`` C > 1 draws C such categorical codes independently (InfoGAN's several
    categorical codes), so G sees ``C * K + dim`` inputs and has K^C members: on stacked
    digits, three codes of 10 give one code per channel's digit.
    """

    dim: int = 64
    distribution: Distribution = "gaussian"
    categories: int = 0
    codes: int = 1

    def __post_init__(self) -> None:
        if self.dim < 1:
            raise ConfigError(f"latent.dim must be a positive integer (got {self.dim}).")
        if isinstance(self.categories, bool) or self.categories < 0 or self.categories == 1:
            raise ConfigError(
                f"latent.categories must be 0 (none) or at least 2 (got {self.categories})."
            )
        if isinstance(self.codes, bool) or self.codes < 1:
            raise ConfigError(f"latent.codes must be at least 1 (got {self.codes}).")
        if self.codes > 1 and not self.categories:
            raise ConfigError("latent.codes > 1 needs latent.categories (the size of each code).")
        if self.distribution not in DISTRIBUTIONS:
            raise ConfigError(
                f"latent.distribution must be one of {', '.join(DISTRIBUTIONS)} "
                f"(got {self.distribution!r})."
            )

    def sample(
        self,
        n: int,
        *,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
        truncation: float | None = None,
    ) -> Tensor:
        z = sample_latent(n, self.dim, self.distribution, device=device, generator=generator)
        if truncation is not None:
            z = truncate_latent(z, truncation, self.distribution, generator=generator)
        if self.categories:
            if self.codes == 1:  # drawn as before codes existed, so old seeds draw the same z
                drawn = torch.randint(self.categories, (n,), generator=generator)
            else:
                drawn = torch.randint(self.categories, (n, self.codes), generator=generator)
            one_hot = torch.nn.functional.one_hot(drawn, self.categories).to(z)
            z = torch.cat([one_hot.reshape(n, -1), z], dim=1)
        return z

    @property
    def size(self) -> int:
        """The width of a code: ``codes * categories + dim`` (the generator's ``latent_dim``)."""
        return self.codes * self.categories + self.dim


# A module's saved hyperparameters hold a Latent; allowing it keeps checkpoints loadable with
# ``torch.load(weights_only=True)``, which runs no code from the file.
torch.serialization.add_safe_globals([Latent])


def latent_categories(z: Tensor, categories: int, codes: int = 1) -> Tensor:
    """The category of codes drawn by a ``Latent`` with ``categories`` > 0: (N,) for one
    code, (N, codes) for several."""
    width = codes * categories
    if categories < 2 or codes < 1 or z.dim() != 2 or z.shape[1] <= width:
        raise ConfigError(
            f"latent_categories needs codes (N, codes * categories + dim) with categories >= 2 "
            f"(got shape {tuple(z.shape)}, categories={categories}, codes={codes})."
        )
    drawn = z[:, :width].reshape(len(z), codes, categories).argmax(dim=2)
    return drawn[:, 0] if codes == 1 else drawn


def sample_latent(
    n: int,
    dim: int,
    distribution: str = "gaussian",
    *,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Draw ``n`` latent codes of size ``dim`` from ``distribution`` (see ``Latent``)."""
    if distribution == "uniform":
        return torch.rand(n, dim, device=device, generator=generator) * 2 - 1
    z = torch.randn(n, dim, device=device, generator=generator)
    if distribution == "spherical":
        z = z / z.norm(dim=1, keepdim=True).clamp_min(1e-12) * math.sqrt(dim)
    elif distribution != "gaussian":
        raise ConfigError(
            f"latent distribution must be one of {', '.join(DISTRIBUTIONS)} (got {distribution!r})."
        )
    return z


def truncate_latent(
    z: Tensor,
    threshold: float,
    distribution: str = "gaussian",
    *,
    generator: torch.Generator | None = None,
    max_rounds: int = 100,
) -> Tensor:
    """The truncation trick (Brock et al. 2019, BigGAN): redraw every coordinate |z_i| > t.

    Sampling from a truncated Gaussian trades diversity for quality at sampling time only.
    Only Gaussian codes are truncated; uniform and spherical ones are returned unchanged.
    """
    if threshold <= 0:
        raise ConfigError(f"truncation must be > 0 (got {threshold}).")
    if distribution != "gaussian":
        return z
    z = z.clone()
    for _ in range(max_rounds):
        outside = z.abs() > threshold
        if not outside.any():
            break
        redrawn = torch.randn(z.shape, device=z.device, dtype=z.dtype, generator=generator)
        z = torch.where(outside, redrawn, z)
    # Whatever is still outside after many rounds (tiny thresholds) is clamped.
    return z.clamp(-threshold, threshold)


def slerp(z0: Tensor, z1: Tensor, t: Tensor | float) -> Tensor:
    """Spherical interpolation between codes (White 2016): stays where Gaussian codes live.

    Linear interpolation between two Gaussian codes passes near the origin, a region the
    generator never saw in training; slerp keeps the norm.
    """
    t = torch.as_tensor(t, dtype=z0.dtype, device=z0.device)
    if t.dim() == 1:
        t = t.unsqueeze(-1)
    z0n = z0 / z0.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    z1n = z1 / z1.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    cos = (z0n * z1n).sum(-1, keepdim=True).clamp(-1.0, 1.0)
    omega = torch.acos(cos)
    sin = torch.sin(omega)
    # Nearly parallel codes: slerp's limit is the straight line.
    linear = (1 - t) * z0 + t * z1
    spherical = (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / sin.clamp_min(1e-7)
    return torch.where(sin.abs() < 1e-6, linear, spherical)
