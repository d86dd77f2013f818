"""Handwritten digits that ship with scikit-learn, and their stacked three-channel version.

scikit-learn's ``load_digits`` (the UCI optical recognition of handwritten digits test set:
1,797 images of 8x8 pixels with values 0..16, 10 classes) is bundled with the library, so these
data sets work offline and in CI, where MNIST cannot be downloaded.

Stacked digits follow Stacked MNIST (Metz, Poole, Pfau and Sohl-Dickstein 2017, "Unrolled
Generative Adversarial Networks", ICLR; used by VEEGAN, Srivastava et al. 2017, and PacGAN,
Lin et al. 2018): each of the three channels holds an independently and uniformly drawn digit
image, so the distribution has 10³ = 1,000 modes (class triples) and a pretrained digit
classifier can count how many of them a generator covers.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from gan_tricks.data._common import (
    TensorImages,
    check_holdout,
    check_loader_settings,
    holdout_split,
    make_train_loader,
    no_heldout_data,
    require_int,
    require_sample_count,
    sample_indices,
    seeded_generator,
)
from gan_tricks.data.base import FEATURE_METRIC_SAMPLES, GANDataModule
from gan_tricks.errors import ConfigError

DIGITS_IMAGE_SIZES = (8, 16, 32)
DIGITS_MAX_VALUE = 16.0
NUM_DIGIT_CLASSES = 10
NUM_STACKED_CHANNELS = 3
NUM_STACKED_MODES = NUM_DIGIT_CLASSES**NUM_STACKED_CHANNELS


def _check_image_size(image_size: int) -> None:
    if image_size not in DIGITS_IMAGE_SIZES:
        sizes = ", ".join(str(size) for size in DIGITS_IMAGE_SIZES)
        raise ConfigError(
            f"data.image_size {image_size!r} is not supported for the bundled 8x8 digits;"
            f" use one of {sizes}."
        )


@functools.cache
def _digits_at_size(image_size: int) -> tuple[Tensor, Tensor]:
    # Cached because StackedDigits, evaluation and the digit classifier all ask for the same
    # bank; callers get clones from load_digit_images so the cache cannot be altered.
    bunch = load_digits()
    raw = torch.from_numpy(np.asarray(bunch.images, dtype=np.float32)).unsqueeze(1)
    images = raw / DIGITS_MAX_VALUE * 2.0 - 1.0
    if image_size != raw.shape[-1]:
        # Resized once here rather than per item: the whole set is 1,797 tiny images.
        images = F.interpolate(
            images, size=(image_size, image_size), mode="bilinear", align_corners=False
        )
    # Bilinear weights are convex, so clamping only removes float rounding past the ends.
    images = images.clamp(-1.0, 1.0).contiguous()
    labels = torch.from_numpy(np.asarray(bunch.target, dtype=np.int64))
    return images, labels


def load_digit_images(image_size: int = 16) -> tuple[Tensor, Tensor]:
    """All 1,797 digits as float32 images (N, 1, S, S) in [-1, 1] and their labels (N,) long.

    ``image_size`` S is 8 (native), 16 or 32 (bilinear upsampling).
    """
    _check_image_size(image_size)
    images, labels = _digits_at_size(image_size)
    return images.clone(), labels.clone()


def _draw_digit_triples(n: int, population: int, generator: torch.Generator) -> Tensor:
    """(n, 3) indices into the digit bank, each channel drawn independently and uniformly."""
    return torch.randint(population, (n, NUM_STACKED_CHANNELS), generator=generator)


def make_stacked_digits(
    n: int, image_size: int, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """``n`` stacked digits: images (n, 3, S, S) float32 in [-1, 1] and labels (n, 3) long.

    Channel c of sample i is digit image ``picks[i, c]`` of the 1,797, with ``picks`` uniform
    and independent over samples and channels; ``labels[i, c]`` is that image's class.
    """
    require_sample_count(n)
    bank, bank_labels = load_digit_images(image_size)
    picks = _draw_digit_triples(n, len(bank), generator)
    return bank[picks].squeeze(2), bank_labels[picks]


def stacked_mode_ids(labels: Tensor) -> Tensor:
    """Mode index 0..999 of each class triple (n, 3), reading the triple as a 3-digit number."""
    weights = torch.tensor([100, 10, 1], dtype=torch.long, device=labels.device)
    return (labels.long() * weights).sum(dim=-1)


class Digits(GANDataModule):
    """The 1,797 bundled digits as one-channel images in [-1, 1], resized to ``image_size``.

    ``images`` and ``labels`` expose the whole set (loading it on first use) so the digit
    classifier that scores generated digits trains on exactly what the GAN saw. ``holdout``
    keeps that share of the images out of training (a split fixed by ``seed``), for
    :meth:`heldout_samples`: D's reading of real images it never trained on. ``train_images``
    trains on only that many of the rest (a limited-data setting, where D overfits as in
    ADA's experiments; the held-out share is unchanged).
    """

    kind: str = "images"

    def __init__(
        self,
        image_size: int = 16,
        batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 0,
        holdout: float = 0.0,
        train_images: int | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        _check_image_size(image_size)
        check_loader_settings(batch_size, num_workers, seed)
        check_holdout(holdout)
        if train_images is not None:
            require_int("data.train_images", train_images, 1, "digits to train on")
        self.image_size = image_size
        self.sample_shape: tuple[int, ...] = (1, image_size, image_size)
        self._images: Tensor | None = None
        self._labels: Tensor | None = None

    def setup(self, stage: str | None = None) -> None:
        if self._images is None:
            self._images, self._labels = load_digit_images(self.image_size)

    @property
    def images(self) -> Tensor:
        """All digit images (1797, 1, S, S), float32 in [-1, 1]."""
        self.setup()
        assert self._images is not None
        return self._images

    @property
    def labels(self) -> Tensor:
        """The class 0..9 of each image in :attr:`images`, long (1797,)."""
        self.setup()
        assert self._labels is not None
        return self._labels

    @property
    def split(self) -> tuple[Tensor, Tensor]:
        """Indices into :attr:`images` of the training images and of the held-out ones."""
        train, held = holdout_split(len(self.images), self.hparams.holdout, self.hparams.seed)
        return train[: self.hparams.train_images], held

    def train_dataloader(self) -> DataLoader[Tensor]:
        hp = self.hparams
        train = self.images[self.split[0]]
        return make_train_loader(TensorImages(train), hp.batch_size, hp.num_workers, hp.seed)

    def real_samples(self, n: int, seed: int = 0) -> Tensor:
        """``n`` digit images, distinct while ``n`` <= 1,797, deterministic for ``seed``."""
        require_sample_count(n)
        return self.images[sample_indices(len(self.images), n, seed)]

    def evaluate(
        self,
        samples: Tensor,
        seed: int = 0,
        feature_metrics: bool = True,
        inception_weights: str | None = None,
    ) -> dict[str, Any]:
        """Classes of 10 and reverse KL by the digit classifier; with ``feature_metrics``, FID,
        KID, precision / recall and density / coverage in the digit feature space; the
        diversity ratio."""
        from gan_tricks.metrics.digits import digits_metrics  # builds on this module

        # Its real samples are distinct only up to 1,797.
        return _digit_protocol(
            self, samples, digits_metrics, seed, feature_metrics, len(self.images)
        )

    def heldout_samples(self, n: int, seed: int = 0) -> Tensor:
        """``n`` images of the held-out share (``holdout``), which training never shows D."""
        require_sample_count(n)
        held = self.split[1]
        if len(held) == 0:
            raise no_heldout_data("Digits")
        return self.images[held[sample_indices(len(held), n, seed)]]


class _StackedDigitsSet(Dataset[Tensor]):
    """Stacked digits built on access from the shared bank, so 50,000 samples cost only indices."""

    def __init__(self, bank: Tensor, picks: Tensor) -> None:
        self.bank = bank
        self.picks = picks

    def __len__(self) -> int:
        return self.picks.shape[0]

    def __getitem__(self, index: int) -> Tensor:
        return self.bank[self.picks[index]].squeeze(1)


class StackedDigits(GANDataModule):
    """Stacked-MNIST construction on the bundled digits: 3 channels, 1,000 modes.

    The training set is ``num_samples`` triples drawn once from ``seed`` (the same images
    ``make_stacked_digits(num_samples, image_size, torch.Generator().manual_seed(seed))``
    returns), a finite training set as in the papers, while :meth:`real_samples` draws from the
    full distribution.
    """

    kind: str = "images"
    eval_samples: int = 26_000  # PacGAN's and VEEGAN's Stacked MNIST protocol
    num_modes: int = NUM_STACKED_MODES

    def __init__(
        self,
        image_size: int = 16,
        batch_size: int = 64,
        num_samples: int = 50_000,
        num_workers: int = 0,
        seed: int = 0,
        holdout: float = 0.0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        _check_image_size(image_size)
        check_loader_settings(batch_size, num_workers, seed)
        check_holdout(holdout)
        require_int("data.num_samples", num_samples, 1, "stacked digits in the training set")
        self.image_size = image_size
        self.sample_shape: tuple[int, ...] = (NUM_STACKED_CHANNELS, image_size, image_size)
        self._train_set: _StackedDigitsSet | None = None
        self._bank_labels: Tensor | None = None
        self._bank_split: tuple[Tensor, Tensor] | None = None

    def setup(self, stage: str | None = None) -> None:
        if self._train_set is None:
            bank, self._bank_labels = load_digit_images(self.image_size)
            hp = self.hparams
            self._bank_split = holdout_split(len(bank), hp.holdout, hp.seed)
            train_bank = self._bank_split[0]
            picks = _draw_digit_triples(hp.num_samples, len(train_bank), seeded_generator(hp.seed))
            self._train_set = _StackedDigitsSet(bank, train_bank[picks])

    @property
    def train_set(self) -> Dataset[Tensor]:
        self.setup()
        assert self._train_set is not None
        return self._train_set

    @property
    def labels(self) -> Tensor:
        """Class triples (num_samples, 3) of the training set, long."""
        self.setup()
        assert self._train_set is not None and self._bank_labels is not None
        return self._bank_labels[self._train_set.picks]

    def train_dataloader(self) -> DataLoader[Any]:
        hp = self.hparams
        return make_train_loader(self.train_set, hp.batch_size, hp.num_workers, hp.seed)

    def real_samples(self, n: int, seed: int = 0) -> Tensor:
        """``n`` fresh stacked digits from the full 1,000-mode distribution, not the finite
        training set, so mode-coverage references are unbiased; deterministic for ``seed``."""
        images, _ = make_stacked_digits(n, self.image_size, seeded_generator(seed))
        return images

    def evaluate(
        self,
        samples: Tensor,
        seed: int = 0,
        feature_metrics: bool = True,
        inception_weights: str | None = None,
    ) -> dict[str, Any]:
        """Modes of 1,000 and reverse KL by the digit classifier, channel by channel (Stacked
        MNIST's protocol); with ``feature_metrics`` the digit feature-space metrics; the
        diversity ratio."""
        from gan_tricks.metrics.digits import stacked_digits_metrics  # builds on this module

        return _digit_protocol(self, samples, stacked_digits_metrics, seed, feature_metrics)

    def heldout_samples(self, n: int, seed: int = 0) -> Tensor:
        """``n`` stacked digits built only from the held-out share of the digit images
        (``holdout``), none of which appear in the training triples."""
        require_sample_count(n)
        self.setup()
        assert self._bank_split is not None and self._train_set is not None
        held = self._bank_split[1]
        if len(held) == 0:
            raise no_heldout_data("StackedDigits")
        picks = held[_draw_digit_triples(n, len(held), seeded_generator(seed))]
        return self._train_set.bank[picks].squeeze(2)


def _digit_protocol(
    data: GANDataModule,
    samples: Tensor,
    class_metrics: Callable[[Tensor], dict[str, Any]],
    seed: int,
    feature_metrics: bool,
    max_real: int | None = None,
) -> dict[str, Any]:
    """The digits' protocol: the classifier's metrics (classes or stacked modes), the digit
    feature-space metrics with ``feature_metrics``, the diversity ratio."""
    metrics: dict[str, Any] = {"num_samples": len(samples), **class_metrics(samples)}
    if feature_metrics:
        metrics.update(digit_feature_metrics(samples, data, seed, max_real))
    metrics["diversity_ratio"] = data.diversity_ratio(samples, seed)
    return metrics


def digit_feature_metrics(
    samples: Tensor, data: GANDataModule, seed: int = 0, max_real: int | None = None
) -> dict[str, Any]:
    """FID, KID, precision / recall and density / coverage in the digit feature space
    (:mod:`gan_tricks.metrics.features`), on at most ``FEATURE_METRIC_SAMPLES`` generated and
    as many real samples (at most ``max_real``). Comparable between runs of this toolkit, not
    with published (Inception) FIDs."""
    from gan_tricks.metrics.features import digit_features  # builds on this module
    from gan_tricks.metrics.image import image_metrics

    network = digit_features(channels=samples.shape[1])
    if not bool(torch.isfinite(samples).all()):  # a diverged G: nothing to measure
        names = ("fid", "kid", "kid_std", "precision", "recall", "density", "coverage")
        return dict.fromkeys(names, float("nan")) | {"feature_space": "digits"}
    count = min(len(samples), FEATURE_METRIC_SAMPLES, max_real or len(samples))
    real = data.real_samples(count, seed=seed)
    measured = image_metrics(real, samples[:count], network)
    measured["feature_space"] = "digits"
    measured["feature_net_accuracy"] = network.held_out_accuracy
    return measured
