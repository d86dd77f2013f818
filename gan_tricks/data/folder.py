"""A user's own folder of images as GAN training data.

Real folders contain stray files: thumbnails of zero bytes, half-copied JPEGs, ``.DS_Store``.
Hours into a run, one such file must not crash the epoch, so files are checked once at setup
(PIL ``open`` + ``verify``) and bad ones are dropped with a warning that names them; loading is
guarded as well, because ``verify`` does not decode pixel data and a truncated JPEG can pass it.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from gan_tricks.data._common import (
    check_loader_settings,
    image_transform,
    make_train_loader,
    require_int,
    require_sample_count,
    sample_indices,
    stack_items,
)
from gan_tricks.data.base import GANDataModule
from gan_tricks.errors import ConfigError, DataNotFoundError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif")
_PIL_MODES = {1: "L", 3: "RGB"}


def find_image_files(path: str) -> list[Path]:
    """Image files under ``path`` (recursive, case-insensitive suffixes), in a stable order.

    Sorted so that the same folder gives the same indices, and thus the same seeded shuffle,
    on every machine.
    """
    root = Path(path)
    if not root.is_dir():
        raise DataNotFoundError(
            f"data.path {path!r} is not an existing folder; point data.path at a folder of"
            f" images ({', '.join(IMAGE_SUFFIXES)})."
        )
    files = sorted(
        file for file in root.rglob("*") if file.suffix.lower() in IMAGE_SUFFIXES and file.is_file()
    )
    if not files:
        raise DataNotFoundError(
            f"data.path {path!r} holds no image files; put images ({', '.join(IMAGE_SUFFIXES)})"
            " in it or in its subfolders."
        )
    return files


def _usable(file: Path, min_side: int) -> bool:
    """Whether ``file`` decodes as an image at least ``min_side`` pixels on its shorter side;
    a warning names every file that is not."""
    try:
        with Image.open(file) as image:
            width, height = image.size
            image.verify()
    except Exception as error:  # PIL raises many types (OSError, SyntaxError, ValueError...)
        warnings.warn(f"Skipping unreadable image {file}: {error}", stacklevel=3)
        return False
    if min(width, height) < min_side:
        warnings.warn(
            f"Skipping image {file}: it is {width}x{height} pixels, under data.min_side "
            f"({min_side}); a thumbnail blown up to the training size is mostly blur.",
            stacklevel=3,
        )
        return False
    return True


def _open_image(file: Path, mode: str) -> Image.Image:
    with Image.open(file) as image:
        # Photos from phones store their rotation in EXIF; without this they train sideways.
        upright = ImageOps.exif_transpose(image)
        return upright.convert(mode)


class ImageFiles(Dataset[Tensor]):
    """Image files decoded on access into (C, S, S) tensors in [-1, 1].

    A file that fails to decode is reported once and replaced by the next good file, so an
    epoch always finishes with full batches.
    """

    def __init__(self, files: list[Path], image_size: int, channels: int) -> None:
        self.files = files
        self.mode = _PIL_MODES[channels]
        self.transform = image_transform(image_size, channels)
        self._failed: set[int] = set()

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> Tensor:
        for offset in range(len(self.files)):
            candidate = (index + offset) % len(self.files)
            if candidate in self._failed:
                continue
            try:
                image = _open_image(self.files[candidate], self.mode)
            except Exception as error:  # any decoder failure, see _usable
                self._failed.add(candidate)
                warnings.warn(
                    f"Skipping unreadable image {self.files[candidate]}: {error}", stacklevel=2
                )
                continue
            return self.transform(image)
        raise DataNotFoundError(
            f"none of the {len(self.files)} image files under data.path could be decoded;"
            " replace them with readable images."
        )


class ImageFolder(GANDataModule):
    """Every image under ``path`` as a square ``channels`` x ``image_size``² tensor in [-1, 1].

    Images are resized (shorter side to ``image_size``), center-cropped to a square and converted
    to ``L`` (``channels=1``) or ``RGB`` (``channels=3``). Files that do not decode, and images
    whose shorter side is under ``min_side`` pixels (default: a quarter of ``image_size``), are
    skipped with a warning that names them.
    """

    kind: str = "images"

    def __init__(
        self,
        path: str,
        image_size: int = 64,
        channels: int = 3,
        batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 0,
        min_side: int | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        require_int("data.image_size", image_size, 1, "side of the square images in pixels")
        if min_side is not None:
            require_int("data.min_side", min_side, 1, "smallest usable image side in pixels")
        self.min_side = min_side if min_side is not None else max(1, image_size // 4)
        if channels not in _PIL_MODES:
            raise ConfigError(
                f"data.channels {channels!r} is not supported; use 1 (grayscale) or 3 (RGB)."
            )
        check_loader_settings(batch_size, num_workers, seed)
        self.path = path
        self.image_size = image_size
        self.channels = channels
        self.sample_shape: tuple[int, ...] = (channels, image_size, image_size)
        self._train_set: ImageFiles | None = None

    def setup(self, stage: str | None = None) -> None:
        if self._train_set is not None:
            return
        files = [file for file in find_image_files(self.path) if _usable(file, self.min_side)]
        if not files:
            raise DataNotFoundError(
                f"data.path {self.path!r} holds no usable images; replace the files listed in"
                " the warnings above (unreadable, or smaller than data.min_side)."
            )
        self._train_set = ImageFiles(files, self.image_size, self.channels)

    @property
    def train_set(self) -> ImageFiles:
        self.setup()
        assert self._train_set is not None
        return self._train_set

    def train_dataloader(self) -> DataLoader[Any]:
        hp = self.hparams
        return make_train_loader(self.train_set, hp.batch_size, hp.num_workers, hp.seed)

    def real_samples(self, n: int, seed: int = 0) -> Tensor:
        """``n`` images of the folder, distinct while it is large enough, deterministic for
        ``seed``."""
        require_sample_count(n)
        data = self.train_set
        return stack_items(data, sample_indices(len(data), n, seed), self.sample_shape)
