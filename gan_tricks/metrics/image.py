"""FID, KID, precision / recall and density / coverage of generated images, in one feature space.

- FID (Heusel et al. 2017) and KID (Binkowski et al. 2018) through torchmetrics, fed features
  computed once (an identity "extractor" of the right width), so that all six numbers read
  the same features.
- Precision and recall (Kynkäänniemi et al. 2019): each set's manifold is the union of balls
  around its samples, each ball reaching the sample's k-th nearest neighbour in its own set;
  precision is the share of generated samples inside the real manifold, recall the share of
  real samples inside the generated one.
- Density and coverage (Naeem et al. 2020): density counts how many real balls hold each
  generated sample (over k: 1 when fakes are distributed like reals, higher when they crowd
  onto dense regions); coverage is the share of real balls that hold at least one generated
  sample, robust to outliers among the fakes.

Which feature space decides what the numbers can be compared with: see
:mod:`gan_tricks.metrics.features`.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor, nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from gan_tricks.errors import ConfigError

NEAREST_NEIGHBOURS = 5  # k of both papers' recommended settings
KID_SUBSET_SIZE = 1000  # torchmetrics' default; smaller sets use all their samples


class _Precomputed(nn.Module):
    """The features themselves: lets torchmetrics' FID and KID take features computed once."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: Tensor) -> Tensor:
        return features


@torch.no_grad()
def features_of(images: Tensor, network: nn.Module, batch_size: int = 512) -> Tensor:
    """``network``'s features of ``images``, in batches, as float64 (N, D) on the CPU."""
    chunks = [network(chunk).double().cpu() for chunk in images.split(batch_size)]
    return torch.cat(chunks)


def _radii(features: Tensor, k: int) -> Tensor:
    """Distance from each sample to its k-th nearest neighbour in its own set (self excluded)."""
    distances = torch.cdist(features, features)
    return distances.kthvalue(k + 1, dim=1).values  # the 0 to itself is the first


def manifold_metrics(real: Tensor, fake: Tensor, k: int = NEAREST_NEIGHBOURS) -> dict[str, float]:
    """Precision, recall, density and coverage of ``fake`` features against ``real`` ones
    (each (N, D)), with k-nearest-neighbour balls."""
    if min(len(real), len(fake)) <= k:
        raise ConfigError(f"precision and recall need more than k = {k} samples in each set.")
    real_radii, fake_radii = _radii(real, k), _radii(fake, k)
    fake_to_real = torch.cdist(fake, real)  # (M, N)
    inside_real_balls = fake_to_real <= real_radii.unsqueeze(0)
    inside_fake_balls = fake_to_real.t() <= fake_radii.unsqueeze(0)  # (N, M)
    return {
        "precision": float(inside_real_balls.any(dim=1).double().mean()),
        "recall": float(inside_fake_balls.any(dim=1).double().mean()),
        "density": float(inside_real_balls.double().sum() / (k * len(fake))),
        "coverage": float(inside_real_balls.any(dim=0).double().mean()),
    }


def image_metrics(
    real_images: Tensor, fake_images: Tensor, network: nn.Module, k: int = NEAREST_NEIGHBOURS
) -> dict[str, float]:
    """FID, KID (mean and standard deviation over subsets), precision, recall, density and
    coverage of ``fake_images`` against ``real_images``, all in ``network``'s feature space."""
    real, fake = features_of(real_images, network), features_of(fake_images, network)
    if not (torch.isfinite(fake).all() and torch.isfinite(real).all()):
        raise ConfigError("the images hold NaN or Inf; no distance can be measured on them.")
    identity = _Precomputed(real.shape[1])
    fid = FrechetInceptionDistance(feature=identity, reset_real_features=False)
    fid.update(real, real=True)
    fid.update(fake, real=False)
    subset = min(KID_SUBSET_SIZE, len(real), len(fake))
    with warnings.catch_warnings():  # it keeps every feature: that is the point here
        warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
        kid = KernelInceptionDistance(feature=identity, subset_size=subset)
    kid.update(real, real=True)
    kid.update(fake, real=False)
    # KID draws its subsets at random: from a seed of its own, leaving the global RNG alone.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        kid_mean, kid_std = kid.compute()
    return {
        "fid": float(fid.compute()),
        "kid": float(kid_mean),
        "kid_std": float(kid_std),
        **manifold_metrics(real, fake, k),
        "feature_samples": min(len(real), len(fake)),
    }
