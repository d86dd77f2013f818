"""Mode coverage on (stacked) digits: classify each channel, count class triples, reverse KL.

The Stacked MNIST protocol (Metz et al. 2017, "Unrolled Generative Adversarial Networks";
Srivastava et al. 2017, VEEGAN; Lin et al. 2018, PacGAN), on scikit-learn's bundled 8x8 digits
as ../BENCHMARKS.md section 2 sets it out: classify each of the three channels of 26,000
generated samples with a digit classifier trained on the same digits, count the distinct class
triples (modes covered, of 1,000) and report KL(q || uniform) in nats, q being the empirical
distribution of triples.

The classifier is scikit-learn's RBF support vector machine (``SVC(C=3)``) on the 64 pixels
of the native 8x8 digits in the package's [-1, 1] scale; it trains deterministically in well
under a second. Held-out accuracy, 5-fold stratified cross-validation over the 1,797 digits:
98.9 % at 8x8 and 98.9 % on digits bilinearly upsampled to 16x16 (or 32x32) and area-averaged
back to 8x8, which is how generated images are read. That round trip is a slight blur (each
pixel becomes 0.75 of itself plus 0.125 of each neighbour per axis), not the identity, but it
costs no measurable accuracy. A small CNN measured 97.9 % and took over a minute to train.

The classifier trained on all 1,797 digits misreads 2 of them at 8x8 and 4 after the 16x16
round trip. Real stacked digits at 16x16 (26,000 samples, seeds 0, 1, 2): 1,000 modes of 1,000
and a reverse KL of 0.0195, 0.0191, 0.0201 (from the true labels: 0.0195, 0.0192, 0.0202), on
the sampling floor of (1,000 - 1) / (2 * 26,000) = 0.0192. Classifying the 78,000 channels
takes about 2.5 s of CPU time.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.svm import SVC
from torch import Tensor

from gan_tricks.data.digits import (
    NUM_DIGIT_CLASSES,
    NUM_STACKED_CHANNELS,
    NUM_STACKED_MODES,
    load_digit_images,
    stacked_mode_ids,
)
from gan_tricks.errors import ConfigError

# The classifier reads digits at the resolution they were recorded at.
CLASSIFIER_IMAGE_SIZE = 8
# Chosen by held-out accuracy: 5-fold C = 3 and 10 both 98.9 %; one 70/30 split C = 1 98.7 %.
SVC_REGULARIZATION = 3.0
# Marks an image the classifier cannot read (a non-finite pixel, e.g. from a diverged G).
UNREADABLE = -1


def fit_digit_classifier(images: Tensor, labels: Tensor) -> SVC:
    """An RBF support vector classifier on 8x8 digit images (N, 1, 8, 8) in [-1, 1].

    The digit classifier of the Stacked MNIST protocol (Metz et al. 2017; VEEGAN; PacGAN),
    here an SVM, which beats a small CNN on the 1,797 bundled digits. Deterministic.
    """
    pixels = _to_classifier_size(images).reshape(len(images), -1).numpy()
    return SVC(C=SVC_REGULARIZATION).fit(pixels, labels.numpy())


@functools.cache
def digit_classifier() -> SVC:
    """The classifier trained on all 1,797 bundled digits, trained once per process."""
    images, labels = load_digit_images(CLASSIFIER_IMAGE_SIZE)
    return fit_digit_classifier(images, labels)


def _to_classifier_size(images: Tensor) -> Tensor:
    """(N, 1, H, W) float32 on the CPU, area-averaged (or stretched) to 8x8."""
    images = images.detach().float().cpu()
    if images.shape[-2:] != (CLASSIFIER_IMAGE_SIZE, CLASSIFIER_IMAGE_SIZE):
        images = F.adaptive_avg_pool2d(images, CLASSIFIER_IMAGE_SIZE)
    return images


def classify_digits(images: Tensor, classifier: SVC | None = None) -> Tensor:
    """The digit class 0..9 of each image (N, 1, H, W) or (N, H, W) in [-1, 1], long (N,).

    Images of any size are area-averaged to 8x8 first. An image with a non-finite pixel gets
    :data:`UNREADABLE` (-1). ``classifier`` defaults to :func:`digit_classifier`.
    """
    if images.dim() == 3:
        images = images.unsqueeze(1)
    if images.dim() != 4 or images.shape[1] != 1:
        raise ConfigError(
            f"classify_digits needs one-channel images (N, 1, H, W) or (N, H, W), got shape"
            f" {tuple(images.shape)}; pass one channel at a time."
        )
    images = _to_classifier_size(images)
    classes = torch.full((len(images),), UNREADABLE, dtype=torch.long)
    readable = images.flatten(1).isfinite().all(dim=1)
    if readable.any():
        pixels = images[readable].reshape(int(readable.sum()), -1).numpy()
        predicted = (classifier or digit_classifier()).predict(pixels)
        classes[readable] = torch.from_numpy(np.asarray(predicted, dtype=np.int64))
    return classes


def mode_coverage(mode_ids: Tensor, num_modes: int) -> dict[str, float | int | None]:
    """Modes hit and KL(q || uniform over ``num_modes``) in nats of mode indices (N,).

    Negative ids (unreadable samples) count in ``num_samples`` and ``unreadable`` but not in q;
    ``reverse_kl`` is None when no sample is readable. As VEEGAN and PacGAN compute it.
    """
    mode_ids = mode_ids.long().cpu()
    readable = mode_ids[mode_ids >= 0]
    if len(readable) and int(readable.max()) >= num_modes:
        raise ConfigError(
            f"mode index {int(readable.max())} is outside num_modes={num_modes}; pass the number"
            " of modes the data has."
        )
    counts = torch.bincount(readable, minlength=num_modes).double()
    reverse_kl = None
    if len(readable):
        q = counts[counts > 0] / len(readable)
        reverse_kl = float((q * (q * num_modes).log()).sum())
    return {
        "modes_covered": int((counts > 0).sum()),
        "num_modes": num_modes,
        "reverse_kl": reverse_kl,
        "num_samples": len(mode_ids),
        "unreadable": len(mode_ids) - len(readable),
    }


def stacked_digits_metrics(
    samples: Tensor, num_modes: int = NUM_STACKED_MODES
) -> dict[str, float | int | None]:
    """Modes covered (of 1,000) and reverse KL of stacked-digit samples (N, 3, H, W).

    Stacked MNIST protocol (Metz et al. 2017; VEEGAN Table 2; PacGAN Table 2): each channel is
    classified, and the class triple (c0, c1, c2) is mode 100 c0 + 10 c1 + c2. A sample with an
    unreadable channel is left out of q and counted in ``unreadable``.
    """
    if samples.dim() != 4 or samples.shape[1] != NUM_STACKED_CHANNELS:
        raise ConfigError(
            f"stacked_digits_metrics needs samples of shape (N, 3, H, W), got"
            f" {tuple(samples.shape)}; use digits_metrics for one-channel digits."
        )
    n = len(samples)
    channel_classes = classify_digits(
        samples.reshape(n * NUM_STACKED_CHANNELS, 1, *samples.shape[2:])
    )
    triples = channel_classes.reshape(n, NUM_STACKED_CHANNELS)
    mode_ids = stacked_mode_ids(triples)
    mode_ids[(triples < 0).any(dim=1)] = UNREADABLE
    return mode_coverage(mode_ids, num_modes)


def digits_metrics(
    samples: Tensor, num_modes: int = NUM_DIGIT_CLASSES
) -> dict[str, float | int | None]:
    """Classes covered (of 10) and reverse KL of one-channel digit samples (N, 1, H, W).

    The Stacked MNIST protocol (Metz et al. 2017) with one channel: each class is a mode.
    """
    return mode_coverage(classify_digits(samples), num_modes)


def sampling_floor_kl(num_samples: int, num_modes: int) -> float:
    """Expected KL(q || uniform) of ``num_samples`` perfect samples: (K - 1) / (2 N) nats.

    The first-order (chi-squared) approximation, good while N >> K; BENCHMARKS.md's "about
    0.02" for 26,000 samples over 1,000 modes.
    """
    return (num_modes - 1) / (2 * num_samples) if num_samples > 0 else math.inf
