"""TorchvisionImages on tiny files written in torchvision's real on-disk formats."""

from __future__ import annotations

import os
import pickle
import struct
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch
import torchvision.datasets.celeba
import torchvision.datasets.cifar
import torchvision.datasets.mnist
from PIL import Image

from gan_tricks.data import TorchvisionImages
from gan_tricks.errors import ConfigError, DataNotFoundError


def _write_idx_images(path: Path, images: np.ndarray) -> None:
    # idx3: magic 0x00000803 (unsigned byte, 3 dims), then the sizes, all big-endian.
    count, rows, cols = images.shape
    path.write_bytes(struct.pack(">IIII", 0x0803, count, rows, cols) + images.tobytes())


def _write_idx_labels(path: Path, labels: np.ndarray) -> None:
    path.write_bytes(struct.pack(">II", 0x0801, len(labels)) + labels.astype(np.uint8).tobytes())


def _mnist_images(count: int, seed: int) -> np.ndarray:
    images = np.random.default_rng(seed).integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
    images[0, 0, 0] = 255
    images[0, 0, 1] = 0
    images[1] = 255
    return images


def _write_mnist(root: Path, folder: str) -> np.ndarray:
    """The four uncompressed files torchvision's MNIST._check_exists looks for in <folder>/raw."""
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    train = _mnist_images(10, seed=0)
    _write_idx_images(raw / "train-images-idx3-ubyte", train)
    _write_idx_labels(raw / "train-labels-idx1-ubyte", np.arange(10) % 10)
    _write_idx_images(raw / "t10k-images-idx3-ubyte", _mnist_images(4, seed=1))
    _write_idx_labels(raw / "t10k-labels-idx1-ubyte", np.arange(4))
    return train


def _write_cifar10(root: Path) -> np.ndarray:
    """cifar-10-batches-py as the python pickles of the official archive (2 images a batch)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    train_images = []
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        images = rng.integers(0, 256, size=(2, 3, 32, 32), dtype=np.uint8)
        if name == "data_batch_1":
            images[0, :, 0, 0] = (255, 0, 255)
            images[1] = 0
        if name != "test_batch":
            train_images.append(images)
        # Rows are 3072 bytes: the red, green and blue 32x32 planes in row-major order.
        entry = {"data": images.reshape(2, 3072), "labels": [1, 2], "batch_label": name}
        (folder / name).write_bytes(pickle.dumps(entry, protocol=2))
    meta = {"label_names": [f"class{i}" for i in range(10)]}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return np.concatenate(train_images)


def _write_celeba(root: Path, count: int = 4) -> None:
    """celeba/ with img_align_celeba/*.jpg (218 high, 178 wide) and the annotation files."""
    folder = root / "celeba"
    images = folder / "img_align_celeba"
    images.mkdir(parents=True)
    names = [f"{i:06d}.jpg" for i in range(1, count + 1)]
    for i, name in enumerate(names):
        Image.new("RGB", (178, 218), (40 * i, 100, 200)).save(images / name)
    (folder / "list_eval_partition.txt").write_text("".join(f"{n} 0\n" for n in names))
    (folder / "identity_CelebA.txt").write_text("".join(f"{n} 1\n" for n in names))
    (folder / "list_bbox_celeba.txt").write_text(
        f"{count}\nimage_id x_1 y_1 width height\n" + "".join(f"{n} 1 2 3 4\n" for n in names)
    )
    (folder / "list_landmarks_align_celeba.txt").write_text(
        f"{count}\nlefteye_x lefteye_y\n" + "".join(f"{n} 69 109\n" for n in names)
    )
    (folder / "list_attr_celeba.txt").write_text(
        f"{count}\nSmiling Young\n" + "".join(f"{n} 1 -1\n" for n in names)
    )


def _checksums_skipped(monkeypatch: pytest.MonkeyPatch, module) -> None:
    # Bypasses only the md5 comparison against the official files, which tiny test files cannot
    # match; a missing file still fails. CIFAR10._check_integrity alone is not enough because
    # CIFAR10._load_meta checks batches.meta through the same module-level check_integrity.
    monkeypatch.setattr(module, "check_integrity", lambda fpath, md5=None: os.path.isfile(fpath))


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_mnist_files_load_with_exact_pixel_values(tmp_path, name, folder):
    train = _write_mnist(tmp_path, folder)
    dm = TorchvisionImages(name=name, root=str(tmp_path), image_size=28, batch_size=4)
    assert dm.sample_shape == (1, 28, 28)
    dm.prepare_data()
    dm.setup("fit")

    batch = next(iter(dm.train_dataloader()))
    assert isinstance(batch, torch.Tensor)
    assert batch.shape == (4, 1, 28, 28)
    assert batch.dtype == torch.float32
    assert batch.min().item() >= -1.0
    assert batch.max().item() <= 1.0

    first, _ = dm.train_set[0]
    assert first[0, 0, 0].item() == 1.0  # pixel 255
    assert first[0, 0, 1].item() == -1.0  # pixel 0
    expected = torch.from_numpy(train[0]).float() / 255 * 2 - 1
    torch.testing.assert_close(first[0], expected, rtol=0, atol=1e-6)


def test_mnist_is_resized(tmp_path):
    _write_mnist(tmp_path, "MNIST")
    dm = TorchvisionImages(name="mnist", root=str(tmp_path), image_size=32, batch_size=4)
    dm.setup("fit")
    assert next(iter(dm.train_dataloader())).shape == (4, 1, 32, 32)
    white, _ = dm.train_set[1]
    assert white.shape == (1, 32, 32)
    torch.testing.assert_close(white, torch.ones(1, 32, 32), rtol=0, atol=1e-6)
    samples = dm.real_samples(6, seed=1)
    assert samples.shape == (6, 1, 32, 32)
    torch.testing.assert_close(samples, dm.real_samples(6, seed=1), rtol=0, atol=0)


def test_cifar10_pickles_load_with_exact_pixel_values(tmp_path, monkeypatch):
    _checksums_skipped(monkeypatch, torchvision.datasets.cifar)
    train = _write_cifar10(tmp_path)
    dm = TorchvisionImages(name="cifar10", root=str(tmp_path), image_size=32, batch_size=4)
    assert dm.sample_shape == (3, 32, 32)
    dm.setup("fit")

    batch = next(iter(dm.train_dataloader()))
    assert isinstance(batch, torch.Tensor)
    assert batch.shape == (4, 3, 32, 32)
    assert batch.min().item() >= -1.0
    assert batch.max().item() <= 1.0

    first, _ = dm.train_set[0]
    assert first[:, 0, 0].tolist() == [1.0, -1.0, 1.0]
    expected = torch.from_numpy(train[0]).float() / 255 * 2 - 1
    torch.testing.assert_close(first, expected, rtol=0, atol=1e-6)
    black, _ = dm.train_set[1]
    assert (black == -1.0).all()
    assert len(dm.train_set) == 10  # five training batches, the test batch left out


def test_cifar10_is_resized(tmp_path, monkeypatch):
    _checksums_skipped(monkeypatch, torchvision.datasets.cifar)
    _write_cifar10(tmp_path)
    dm = TorchvisionImages(name="cifar10", root=str(tmp_path), image_size=16, batch_size=5)
    assert next(iter(dm.train_dataloader())).shape == (5, 3, 16, 16)


def test_celeba_is_resized_and_center_cropped(tmp_path, monkeypatch):
    _checksums_skipped(monkeypatch, torchvision.datasets.celeba)
    _write_celeba(tmp_path)
    dm = TorchvisionImages(name="celeba", root=str(tmp_path), image_size=16, batch_size=2)
    assert dm.sample_shape == (3, 16, 16)
    batch = next(iter(dm.train_dataloader()))  # CelebA's labels are None: the collate drops them
    assert isinstance(batch, torch.Tensor)
    assert batch.shape == (2, 3, 16, 16)
    assert batch.min().item() >= -1.0
    assert batch.max().item() <= 1.0


@pytest.mark.parametrize(
    "name, folder",
    [
        ("mnist", os.path.join("MNIST", "raw")),
        ("fashion_mnist", os.path.join("FashionMNIST", "raw")),
        ("cifar10", "cifar-10-batches-py"),
        ("celeba", "celeba"),
    ],
)
def test_missing_data_says_where_and_how(tmp_path, name, folder):
    dm = TorchvisionImages(name=name, root=str(tmp_path), download=False)
    dm.prepare_data()  # without download there is nothing to prepare
    with pytest.raises(DataNotFoundError) as error:
        dm.setup("fit")
    message = str(error.value)
    assert str(tmp_path) in message
    assert os.path.join(str(tmp_path), folder) in message
    assert "--data.download true" in message
    assert "\n" not in message
    assert isinstance(error.value, ConfigError)


def test_failed_mnist_download_is_the_same_sentence(tmp_path, monkeypatch):
    def offline(url, *args, **kwargs):
        raise URLError("[Errno -3] Temporary failure in name resolution")

    # torchvision tries each mirror, collects the URLErrors and raises a RuntimeError.
    monkeypatch.setattr(torchvision.datasets.mnist, "download_and_extract_archive", offline)
    dm = TorchvisionImages(name="mnist", root=str(tmp_path), download=True)
    with pytest.raises(DataNotFoundError) as error:
        dm.prepare_data()
    message = str(error.value)
    assert "could not be downloaded" in message
    assert "name resolution" in message  # the cause, from the last line of torchvision's error
    assert os.path.join(str(tmp_path), "MNIST", "raw") in message
    assert "\n" not in message


def test_failed_cifar_download_is_the_same_sentence(tmp_path, monkeypatch):
    def offline(url, *args, **kwargs):
        raise URLError("[Errno -3] Temporary failure in name resolution")

    # CIFAR10 does not catch download errors, so the URLError itself reaches the DataModule.
    monkeypatch.setattr(torchvision.datasets.cifar, "download_and_extract_archive", offline)
    dm = TorchvisionImages(name="cifar10", root=str(tmp_path), download=True)
    with pytest.raises(DataNotFoundError, match="name resolution") as error:
        dm.setup("fit")
    assert os.path.join(str(tmp_path), "cifar-10-batches-py") in str(error.value)


def test_unknown_name_and_bad_settings():
    with pytest.raises(ConfigError, match="cifar10"):
        TorchvisionImages(name="svhn")
    with pytest.raises(ConfigError, match="data.image_size"):
        TorchvisionImages(image_size=0)
    with pytest.raises(ConfigError, match="data.batch_size"):
        TorchvisionImages(batch_size=0)


def test_construction_reads_no_files(tmp_path):
    dm = TorchvisionImages(name="celeba", root=str(tmp_path / "absent"), image_size=64)
    assert dm.kind == "images"
    assert dm.sample_shape == (3, 64, 64)
    assert dm.hparams["name"] == "celeba"
    assert not (tmp_path / "absent").exists()
