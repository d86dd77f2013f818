"""The interface every data module shares, and the evaluation protocol that fits its data.

`gan-tricks evaluate`, the quality probe, the pictures and the detectors that read real data
ask the data module through :class:`GANDataModule`, never its class: a data module of your own
gets the same evaluation by subclassing it and implementing :meth:`~GANDataModule.real_samples`
(and, for a protocol of its own, :meth:`~GANDataModule.evaluate`).
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor

from gan_tricks.errors import ConfigError

# Diversity: mean pairwise distance on at most this many samples (pdist is quadratic).
DIVERSITY_MAX_SAMPLES = 1024
# FID / KID / precision-recall on at most this many generated and as many real samples.
FEATURE_METRIC_SAMPLES = 2048


class GANDataModule(pl.LightningDataModule):
    """A Lightning data module that yields bare float32 batches and can be evaluated against.

    Attributes:
        kind: ``"points"`` (2D and other vectors) or ``"images"`` ((C, H, W) in [-1, 1]).
        sample_shape: the shape of one sample, known right after construction (before any file
            is read), so G's output can be checked against it before training.
        eval_samples: how many generated samples the evaluation protocol draws by default.
        picture_samples: how many samples the run's pictures show.
    """

    kind: str = "images"
    eval_samples: int = 2048
    picture_samples: int = 64
    sample_shape: tuple[int, ...]

    def real_samples(self, n: int, seed: int = 0) -> Tensor:
        """``n`` real samples, deterministic for ``seed``: the reference of every metric."""
        raise NotImplementedError(
            f"{type(self).__name__} does not implement real_samples(n, seed), which evaluation "
            "and the detectors that compare with real data need."
        )

    def heldout_samples(self, n: int, seed: int = 0) -> Tensor:
        """``n`` real samples kept out of training (for ``DiscriminatorOverfitting``)."""
        raise ConfigError(
            f"{type(self).__name__} holds no samples out of training; use a data module with "
            "a held-out share (e.g. data.init_args.holdout: 0.1 on the digits)."
        )

    def evaluate(
        self,
        samples: Tensor,
        seed: int = 0,
        feature_metrics: bool = True,
        inception_weights: str | None = None,
    ) -> dict[str, Any]:
        """The metrics that fit this data, on generated ``samples``.

        The default protocol, for any image data: the diversity ratio against as many real
        samples (1.0: as diverse as the data), and with ``feature_metrics`` and the path of
        torch-fidelity's Inception-v3 weights, FID, KID, precision / recall and density /
        coverage in Inception's feature space. Data with a protocol of its own (modes of a
        mixture, classes of digits) overrides this.
        """
        metrics: dict[str, Any] = {"num_samples": len(samples)}
        if feature_metrics and inception_weights is not None and self.kind == "images":
            # Imported here: the metrics modules build on the data modules.
            from gan_tricks.metrics.features import InceptionFeatures
            from gan_tricks.metrics.image import image_metrics

            count = min(len(samples), FEATURE_METRIC_SAMPLES)
            real = self.real_samples(count, seed=seed)
            network = InceptionFeatures(inception_weights)
            metrics.update(image_metrics(real, samples[:count], network))
            metrics["feature_space"] = "inception"
        metrics["diversity_ratio"] = self.diversity_ratio(samples, seed)
        return metrics

    def diversity_ratio(self, samples: Tensor, seed: int = 0) -> float:
        """Mean pairwise distance of ``samples`` over that of as many real samples."""
        real = self.real_samples(min(len(samples), DIVERSITY_MAX_SAMPLES), seed=seed)
        return mean_pairwise_distance(samples) / max(mean_pairwise_distance(real), 1e-12)


def mean_pairwise_distance(samples: Tensor, max_samples: int = DIVERSITY_MAX_SAMPLES) -> float:
    """Sample diversity: mean L2 distance between samples (on at most ``max_samples``)."""
    count = min(len(samples), max_samples)
    flat = samples[:count].reshape(count, -1).double()
    return float(torch.pdist(flat).mean())
