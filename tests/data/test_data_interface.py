"""The interface every DataModule shares, checked on all of them at once."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl

import gan_tricks.data as data
from gan_tricks.errors import ConfigError

# Constructor arguments that need no files; ImageFolder reads its folder only at setup.
MODULES = [
    (data.Toy2D, {"name": "grid25"}, "points", (2,)),
    (data.Digits, {"image_size": 8}, "images", (1, 8, 8)),
    (data.StackedDigits, {"image_size": 32}, "images", (3, 32, 32)),
    (data.TorchvisionImages, {"name": "cifar10", "image_size": 24}, "images", (3, 24, 24)),
    (data.ImageFolder, {"path": "unused", "image_size": 20, "channels": 1}, "images", (1, 20, 20)),
]
IDS = [module.__name__ for module, *_ in MODULES]


@pytest.mark.parametrize("module, kwargs, kind, shape", MODULES, ids=IDS)
def test_kind_shape_and_hyperparameters_before_setup(module, kwargs, kind, shape):
    dm = module(**kwargs)
    assert isinstance(dm, pl.LightningDataModule)
    assert dm.kind == kind
    assert dm.sample_shape == shape
    for key, value in kwargs.items():
        assert dm.hparams[key] == value
    assert {"batch_size", "num_workers", "seed"} <= set(dm.hparams)


@pytest.mark.parametrize(
    "setting, value",
    [("batch_size", 0), ("batch_size", True), ("num_workers", -1), ("seed", -3)],
)
@pytest.mark.parametrize("module, kwargs, kind, shape", MODULES, ids=IDS)
def test_shared_settings_are_validated(module, kwargs, kind, shape, setting, value):
    with pytest.raises(ConfigError, match=f"data.{setting}"):
        module(**kwargs, **{setting: value})


def test_public_names():
    assert set(data.__all__) >= {
        "Toy2D",
        "Digits",
        "StackedDigits",
        "TorchvisionImages",
        "ImageFolder",
        "sample_toy2d",
        "mixture_modes",
        "make_stacked_digits",
    }
    for name in data.__all__:
        assert hasattr(data, name)
