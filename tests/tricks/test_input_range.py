"""InputRangeCheck on real datamodules and plain loaders (ganhacks #1)."""

import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from gan_tricks.data import Digits, Toy2D
from gan_tricks.errors import ConfigError
from gan_tricks.lightning import GANModule
from gan_tricks.testing import fit_briefly, tiny_gan_module, tiny_image_gan_module
from gan_tricks.tricks.input_range import InputRangeCheck


def fit_with_the_check(
    module: GANModule, data: DataLoader | pl.LightningDataModule, steps: int = 1
) -> None:
    """The check runs when training starts, or on the first real batch."""
    module.add_trick(InputRangeCheck())
    fit_briefly(module, steps, data=data)


def image_module(out_activation: str = "tanh") -> GANModule:
    return tiny_image_gan_module(width=4, g_options={"out_activation": out_activation})


def points_module(out_activation: str = "identity") -> GANModule:
    return tiny_gan_module(width=8, depth=1, g_options={"out_activation": out_activation})


def test_digits_with_a_tanh_generator_pass():
    fit_with_the_check(image_module(), Digits(image_size=8, batch_size=32))


def test_digits_scaled_to_zero_one_fail_on_a_plain_loader():
    images = Digits(image_size=8, batch_size=32).real_samples(256, seed=0)
    assert images.min() == -1 and images.max() == 1
    loader = DataLoader(TensorDataset((images + 1) / 2), batch_size=32, shuffle=True)
    with pytest.raises(ConfigError, match=r"spans \[0, 1\] .* negative half is never used"):
        fit_with_the_check(image_module(), loader)


def test_digits_with_an_unbounded_or_sigmoid_generator_fail():
    with pytest.raises(ConfigError, match="output is unbounded; end the generator in tanh"):
        fit_with_the_check(image_module("identity"), Digits(image_size=8, batch_size=32))
    with pytest.raises(ConfigError, match=r"ends in sigmoid \(\[0, 1\]\); scale the data"):
        fit_with_the_check(image_module("sigmoid"), Digits(image_size=8, batch_size=32))


def test_grid25_with_an_unbounded_mlp_generator_passes():
    fit_with_the_check(points_module(), Toy2D(name="grid25", batch_size=64))


def test_grid25_with_a_tanh_generator_fails():
    with pytest.raises(
        ConfigError, match=r"spans \[-4.\d+, 4.\d+\] but the generator ends in tanh"
    ):
        fit_with_the_check(points_module("tanh"), Toy2D(name="grid25", batch_size=64))


def test_a_plain_loader_is_checked_on_its_first_batch_before_any_update():
    module = points_module("tanh")
    before = [p.detach().clone() for p in module.parameters()]
    wide = TensorDataset(torch.linspace(-3, 3, 64).reshape(32, 2))
    # The first batch of 16 rows holds the first half of the values: [-3, -0.0476].
    with pytest.raises(ConfigError, match=r"spans \[-3, -0.0476\] but the generator ends"):
        fit_with_the_check(module, DataLoader(wide, batch_size=16))
    assert all(torch.equal(a, b) for a, b in zip(before, module.parameters()))


def test_only_the_first_batch_of_a_plain_loader_is_checked():
    # In range first, out of range after: one check, before the first update, then none.
    rows = torch.cat([torch.rand(16, 2) * 2 - 1, torch.full((16, 2), 5.0)])
    loader = DataLoader(TensorDataset(rows), batch_size=16)
    fit_with_the_check(points_module("tanh"), loader, steps=2)


def test_num_samples_must_be_a_positive_integer():
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ConfigError, match="num_samples must be a whole number >= 1"):
            InputRangeCheck(bad)
