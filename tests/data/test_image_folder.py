from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from PIL import Image

from gan_tricks.data import ImageFolder
from gan_tricks.errors import ConfigError, DataNotFoundError


def _write_folder(root: Path) -> Path:
    """Four good images in several formats and folders, one corrupt PNG and one text file."""
    folder = root / "images"
    (folder / "nested" / "deeper").mkdir(parents=True)
    Image.new("RGB", (20, 20), (255, 255, 255)).save(folder / "white.png")
    Image.new("L", (24, 24), 0).save(folder / "nested" / "black.PNG")
    # 32 wide, 16 high: left quarter black, the rest white; a center crop keeps only white.
    wide = Image.new("RGB", (32, 16), (255, 255, 255))
    wide.paste((0, 0, 0), (0, 0, 8, 16))
    wide.save(folder / "nested" / "deeper" / "wide.bmp")
    Image.new("RGB", (30, 30), (10, 200, 30)).save(folder / "green.jpg")
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 4)
    (folder / "notes.txt").write_text("not an image")
    return folder


def _setup_quietly(dm: ImageFolder) -> list[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dm.setup("fit")
    return caught


def test_folder_loads_good_images_and_warns_about_the_corrupt_one(tmp_path):
    folder = _write_folder(tmp_path)
    dm = ImageFolder(str(folder), image_size=16, channels=3, batch_size=2)
    assert dm.kind == "images"
    assert dm.sample_shape == (3, 16, 16)
    caught = _setup_quietly(dm)
    messages = [str(warning.message) for warning in caught]
    assert len(messages) == 1
    assert str(folder / "corrupt.png") in messages[0]
    assert {file.name for file in dm.train_set.files} == {
        "white.png",
        "black.PNG",
        "wide.bmp",
        "green.jpg",
    }

    loader = dm.train_dataloader()
    assert len(loader) == 2
    for batch in loader:
        assert isinstance(batch, torch.Tensor)
        assert batch.shape == (2, 3, 16, 16)
        assert batch.dtype == torch.float32
        assert batch.min().item() >= -1.0
        assert batch.max().item() <= 1.0


def test_pixel_values_round_trip_and_crop_is_centered(tmp_path):
    folder = _write_folder(tmp_path)
    dm = ImageFolder(str(folder), image_size=16, channels=3, batch_size=2)
    _setup_quietly(dm)
    by_name = {file.name: index for index, file in enumerate(dm.train_set.files)}
    white = dm.train_set[by_name["white.png"]]
    black = dm.train_set[by_name["black.PNG"]]
    wide = dm.train_set[by_name["wide.bmp"]]
    torch.testing.assert_close(white, torch.ones(3, 16, 16), rtol=0, atol=1e-6)
    torch.testing.assert_close(black, -torch.ones(3, 16, 16), rtol=0, atol=1e-6)
    # Squashing the whole 32x16 image to a square would keep dark columns on the left.
    torch.testing.assert_close(wide, torch.ones(3, 16, 16), rtol=0, atol=1e-6)


def test_grayscale_channel(tmp_path):
    folder = _write_folder(tmp_path)
    dm = ImageFolder(str(folder), image_size=8, channels=1, batch_size=4)
    _setup_quietly(dm)
    assert dm.sample_shape == (1, 8, 8)
    assert next(iter(dm.train_dataloader())).shape == (4, 1, 8, 8)
    samples = dm.real_samples(3, seed=2)
    assert samples.shape == (3, 1, 8, 8)
    torch.testing.assert_close(samples, dm.real_samples(3, seed=2), rtol=0, atol=0)


def test_file_broken_after_setup_is_skipped_with_a_warning(tmp_path):
    folder = _write_folder(tmp_path)
    dm = ImageFolder(str(folder), image_size=8, batch_size=2)
    _setup_quietly(dm)
    index = [file.name for file in dm.train_set.files].index("green.jpg")
    (folder / "green.jpg").write_bytes(b"\xff\xd8\xff truncated")
    with pytest.warns(UserWarning, match="green.jpg"):
        image = dm.train_set[index]
    assert image.shape == (3, 8, 8)
    # Every batch still comes out full.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert all(batch.shape == (2, 3, 8, 8) for batch in dm.train_dataloader())


def test_missing_folder_names_the_path(tmp_path):
    missing = tmp_path / "nowhere"
    dm = ImageFolder(str(missing))  # no error before setup, so --help and validation work
    with pytest.raises(DataNotFoundError, match="nowhere"):
        dm.setup("fit")


def test_folder_without_images_names_the_path(tmp_path):
    empty = tmp_path / "empty_folder"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images here")
    with pytest.raises(DataNotFoundError, match="empty_folder"):
        ImageFolder(str(empty)).setup("fit")


def test_folder_of_only_corrupt_images_is_not_found(tmp_path):
    folder = tmp_path / "broken_folder"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="a.png"), pytest.raises(DataNotFoundError):
        ImageFolder(str(folder)).setup("fit")


def test_bad_settings(tmp_path):
    with pytest.raises(ConfigError, match="data.channels"):
        ImageFolder(str(tmp_path), channels=4)
    with pytest.raises(ConfigError, match="data.image_size"):
        ImageFolder(str(tmp_path), image_size=0)
    folder = _write_folder(tmp_path)
    dm = ImageFolder(str(folder), batch_size=5)
    _setup_quietly(dm)
    with pytest.raises(ConfigError, match="data.batch_size"):
        dm.train_dataloader()


def test_an_image_too_small_for_the_training_size_is_skipped_with_its_size(tmp_path):
    folder = _write_folder(tmp_path)
    Image.new("RGB", (3, 40), (255, 0, 0)).save(folder / "sliver.png")
    dm = ImageFolder(str(folder), image_size=16, batch_size=2)  # min_side 4 by default
    messages = [str(w.message) for w in _setup_quietly(dm)]
    assert any(str(folder / "sliver.png") in m and "3x40 pixels" in m for m in messages)
    assert "sliver.png" not in {file.name for file in dm.train_set.files}
    everything = ImageFolder(str(folder), image_size=16, batch_size=2, min_side=1)
    _setup_quietly(everything)
    assert "sliver.png" in {file.name for file in everything.train_set.files}
    with pytest.raises(ConfigError, match="data.min_side"):
        ImageFolder(str(folder), min_side=0)
