"""The standard GAN benchmarks read through torchvision: MNIST, Fashion-MNIST, CIFAR-10, CelebA.

torchvision already knows each set's on-disk layout and download; this module adds the GAN
conventions (square images in [-1, 1], no labels, seeded shuffling) and turns torchvision's
"Dataset not found" errors and offline download failures into one sentence that says where the
files were looked for and how to get them. The check runs in ``prepare_data``/``setup``, never in
``__init__``, so ``--help`` and config validation work on a machine without the data.
"""

from __future__ import annotations

import os
import tarfile
import zipfile
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from torchvision import datasets

from gan_tricks.data._common import (
    check_loader_settings,
    image_transform,
    make_train_loader,
    require_int,
    require_sample_count,
    sample_indices,
)
from gan_tricks.data.base import GANDataModule
from gan_tricks.errors import ConfigError, DataNotFoundError


@dataclass(frozen=True)
class _SetInfo:
    title: str
    channels: int
    # Where, relative to root, torchvision expects the files, and what to copy there by hand.
    folder: str
    files: str


_SETS: dict[str, _SetInfo] = {
    "mnist": _SetInfo("MNIST", 1, os.path.join("MNIST", "raw"), "the four uncompressed idx files"),
    "fashion_mnist": _SetInfo(
        "Fashion-MNIST", 1, os.path.join("FashionMNIST", "raw"), "the four uncompressed idx files"
    ),
    "cifar10": _SetInfo(
        "CIFAR-10", 3, "cifar-10-batches-py", "the extracted cifar-10-python.tar.gz batches"
    ),
    "celeba": _SetInfo(
        "CelebA",
        3,
        "celeba",
        "img_align_celeba/ and the list_*.txt and identity_CelebA.txt annotation files",
    ),
}
TORCHVISION_NAMES = tuple(_SETS)

# What torchvision raises when files are missing or a download cannot complete: RuntimeError for
# "Dataset not found" and exhausted mirrors, URLError (an OSError) without network, OSError for
# unwritable folders, and the archive errors of a truncated download.
_MISSING_DATA_ERRORS = (RuntimeError, OSError, EOFError, tarfile.TarError, zipfile.BadZipFile)


def _labels_dropped(batch: list[tuple[Tensor, Any]]) -> Tensor:
    """Collate (image, label) pairs into an image batch: GANs here train unconditionally."""
    return torch.stack([image for image, _ in batch])


def _short_reason(error: BaseException) -> str:
    # MNIST's download error lists every mirror over several lines and ends with the cause
    # (e.g. "<urlopen error [Errno -2] Name or service not known>"); the last line says most.
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    reason = lines[-1] if lines else type(error).__name__
    return reason if len(reason) <= 160 else reason[:157] + "..."


class TorchvisionImages(GANDataModule):
    """``mnist``, ``fashion_mnist``, ``cifar10`` or ``celeba`` as (C, S, S) images in [-1, 1].

    Uses the training split only. Channels are 1 for the MNISTs and 3 for CIFAR-10 and CelebA,
    so ``sample_shape`` is known from ``name`` before any file is read.
    """

    kind: str = "images"

    def __init__(
        self,
        name: str = "mnist",
        root: str = "data",
        download: bool = False,
        image_size: int = 32,
        batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        if name not in _SETS:
            raise ConfigError(
                f"data.name {name!r} is not a torchvision data set known here; use one of"
                f" {', '.join(TORCHVISION_NAMES)}."
            )
        require_int("data.image_size", image_size, 1, "side of the square images in pixels")
        check_loader_settings(batch_size, num_workers, seed)
        self.name = name
        self.root = root
        self.download = download
        self.image_size = image_size
        self.info = _SETS[name]
        self.sample_shape: tuple[int, ...] = (self.info.channels, image_size, image_size)
        self._train_set: Dataset[tuple[Tensor, Any]] | None = None

    def _build(self, download: bool) -> Dataset[tuple[Tensor, Any]]:
        transform = image_transform(self.image_size, self.info.channels)
        if self.name == "mnist":
            return datasets.MNIST(self.root, train=True, transform=transform, download=download)
        if self.name == "fashion_mnist":
            return datasets.FashionMNIST(
                self.root, train=True, transform=transform, download=download
            )
        if self.name == "cifar10":
            return datasets.CIFAR10(self.root, train=True, transform=transform, download=download)
        # target_type=[] so no annotation is decoded per item; the files must still be present.
        return datasets.CelebA(
            self.root, split="train", target_type=[], transform=transform, download=download
        )

    def missing_data_message(self, download_error: BaseException | None = None) -> str:
        """The one sentence a user sees when the data is not on disk (or failed to download)."""
        info = self.info
        root = os.path.join(self.root, "")
        if download_error is None:
            problem = f"{info.title} was not found under {root}"
            remedy = "rerun with --data.download true on a machine with internet access"
        else:
            problem = (
                f"{info.title} was not found under {root} and could not be downloaded"
                f" ({_short_reason(download_error)})"
            )
            remedy = "rerun on a machine with internet access"
        destination = os.path.join(self.root, info.folder)
        return f"{problem}; {remedy}, or copy {info.files} into {destination}."

    def _load(self, download: bool) -> Dataset[tuple[Tensor, Any]]:
        try:
            return self._build(download)
        except _MISSING_DATA_ERRORS as error:
            cause = error if download else None
            raise DataNotFoundError(self.missing_data_message(cause)) from error

    def prepare_data(self) -> None:
        # Lightning calls this on one process only, so a download never races with itself.
        if self.download:
            self._load(download=True)

    def setup(self, stage: str | None = None) -> None:
        if self._train_set is None:
            # Passing the flag on lets setup() alone work outside a Trainer; torchvision skips
            # the download when prepare_data has already fetched the files.
            self._train_set = self._load(download=self.download)

    @property
    def train_set(self) -> Dataset[tuple[Tensor, Any]]:
        """The torchvision data set of (image, label) pairs, loaded on first use."""
        self.setup()
        assert self._train_set is not None
        return self._train_set

    def train_dataloader(self) -> DataLoader[Any]:
        hp = self.hparams
        return make_train_loader(
            self.train_set, hp.batch_size, hp.num_workers, hp.seed, collate_fn=_labels_dropped
        )

    def real_samples(self, n: int, seed: int = 0) -> Tensor:
        """``n`` training images, distinct while the set is large enough, deterministic for
        ``seed``."""
        require_sample_count(n)
        data = self.train_set
        indices = sample_indices(len(data), n, seed)  # type: ignore[arg-type]
        if n == 0:
            return torch.empty((0, *self.sample_shape), dtype=torch.float32)
        return torch.stack([data[int(i)][0] for i in indices])
