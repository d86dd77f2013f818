"""InputRangeCheck on real datamodules and plain loaders (ganhacks #1)."""

import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from gan_tricks.data import Digits, Toy2D
from gan_tricks.errors import ConfigError
from gan_tricks.module import GANModule
from gan_tricks.testing import fit_briefly, tiny_gan_module, tiny_image_gan_module
from gan_tricks.tricks.input_range import InputRangeCheck, first_real_samples


def fit_with_the_check(module: GANModule, data: DataLoader | pl.LightningDataModule) -> None:
    """One step: the check runs when training starts, before the first batch."""
    fit_briefly(module, 1, [InputRangeCheck()], data=data)


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


def test_reading_a_plain_loader_leaves_its_shuffle_order_alone():
    data = TensorDataset(torch.arange(40.0).reshape(20, 2))

    def loader() -> DataLoader:
        return DataLoader(
            data, batch_size=5, shuffle=True, generator=torch.Generator().manual_seed(0)
        )

    checked = loader()
    first = first_real_samples(checked, 7)
    assert torch.equal(first, data.tensors[0][:7])
    assert all(torch.equal(a[0], b[0]) for a, b in zip(checked, loader()))


def test_first_real_samples_of_an_iterable_dataset_is_its_first_batch():
    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            return iter(torch.ones(30, 2))

    assert torch.equal(
        first_real_samples(DataLoader(Stream(), batch_size=4), 100), torch.ones(4, 2)
    )


def test_num_samples_must_be_a_positive_integer():
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ConfigError, match="num_samples must be a whole number >= 1"):
            InputRangeCheck(bad)
