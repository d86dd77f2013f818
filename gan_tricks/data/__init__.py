"""DataModules for GAN training: 2D toys, bundled digits, torchvision benchmarks, image folders.

Every DataModule subclasses :class:`GANDataModule`: ``kind`` ("points" or "images"),
``sample_shape`` known right after construction, ``train_dataloader()`` yielding bare float32
batches (images in [-1, 1]), ``real_samples(n, seed)`` for evaluation and plots, and
``evaluate(samples)``: the metrics that fit the data.
"""

from __future__ import annotations

from gan_tricks.data.base import GANDataModule
from gan_tricks.data.digits import (
    Digits,
    StackedDigits,
    load_digit_images,
    make_stacked_digits,
    stacked_mode_ids,
)
from gan_tricks.data.folder import ImageFolder
from gan_tricks.data.torchvision_sets import TorchvisionImages
from gan_tricks.data.toy2d import Toy2D, Toy2DStream, mixture_modes, sample_toy2d

__all__ = [
    "Digits",
    "GANDataModule",
    "ImageFolder",
    "StackedDigits",
    "TorchvisionImages",
    "Toy2D",
    "Toy2DStream",
    "load_digit_images",
    "make_stacked_digits",
    "mixture_modes",
    "sample_toy2d",
    "stacked_mode_ids",
]
