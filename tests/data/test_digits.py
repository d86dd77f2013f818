from __future__ import annotations

import pytest
import torch
from scipy.stats import chi2
from sklearn.datasets import load_digits

from gan_tricks.data import (
    Digits,
    StackedDigits,
    load_digit_images,
    make_stacked_digits,
    stacked_mode_ids,
)
from gan_tricks.errors import ConfigError

NUM_DIGITS = 1797


@pytest.fixture(scope="module")
def sklearn_digits():
    bunch = load_digits()
    return torch.from_numpy(bunch.images).float(), torch.from_numpy(bunch.target).long()


def test_native_size_is_the_sklearn_data_scaled_to_minus_one_one(sklearn_digits):
    raw, target = sklearn_digits
    images, labels = load_digit_images(8)
    assert images.shape == (NUM_DIGITS, 1, 8, 8)
    assert images.dtype == torch.float32
    torch.testing.assert_close(images[:, 0], raw / 16 * 2 - 1)
    torch.testing.assert_close(labels, target)


@pytest.mark.parametrize("size", [8, 16, 32])
def test_digits_batches_have_the_shape_and_full_range(size):
    dm = Digits(image_size=size, batch_size=32)
    assert dm.kind == "images"
    assert dm.sample_shape == (1, size, size)
    dm.setup("fit")
    loader = dm.train_dataloader()
    assert len(loader) == NUM_DIGITS // 32  # drop_last
    batch = next(iter(loader))
    assert isinstance(batch, torch.Tensor)
    assert batch.shape == (32, 1, size, size)
    assert batch.dtype == torch.float32

    assert dm.images.shape == (NUM_DIGITS, 1, size, size)
    assert dm.images.min().item() == -1.0
    assert dm.images.max().item() == pytest.approx(1.0, abs=1e-6)
    assert dm.images.min().item() >= -1.0
    assert dm.images.max().item() <= 1.0


def test_upsampling_is_bilinear_of_the_native_images():
    small, _ = load_digit_images(8)
    large, _ = load_digit_images(16)
    expected = torch.nn.functional.interpolate(small, size=(16, 16), mode="bilinear")
    torch.testing.assert_close(large, expected)


def test_labels_are_exposed_for_the_classifier(sklearn_digits):
    _, target = sklearn_digits
    dm = Digits(image_size=16)
    torch.testing.assert_close(dm.labels, target)
    assert dm.images.shape[0] == dm.labels.shape[0]


@pytest.mark.parametrize("size", [7, 12, 64])
def test_unsupported_size_is_a_config_error(size):
    with pytest.raises(ConfigError, match="data.image_size"):
        Digits(image_size=size)
    with pytest.raises(ConfigError, match="data.image_size"):
        StackedDigits(image_size=size)


def test_batch_larger_than_the_data_set_is_a_config_error():
    dm = Digits(batch_size=2000)
    with pytest.raises(ConfigError, match="data.batch_size"):
        dm.train_dataloader()


def test_shuffle_is_seeded():
    def first_batch(seed):
        return next(iter(Digits(image_size=8, batch_size=16, seed=seed).train_dataloader()))

    torch.testing.assert_close(first_batch(1), first_batch(1), rtol=0, atol=0)
    assert not torch.equal(first_batch(1), first_batch(2))


def test_digits_real_samples_are_distinct_and_deterministic():
    dm = Digits(image_size=8)
    samples = dm.real_samples(200, seed=3)
    assert samples.shape == (200, 1, 8, 8)
    torch.testing.assert_close(samples, dm.real_samples(200, seed=3), rtol=0, atol=0)
    assert torch.unique(samples.flatten(1), dim=0).shape[0] >= 190  # the set has few duplicates


def test_stacked_channels_are_digits_with_their_labels():
    bank, bank_labels = load_digit_images(8)
    images, labels = make_stacked_digits(64, 8, torch.Generator().manual_seed(0))
    assert images.shape == (64, 3, 8, 8)
    assert labels.shape == (64, 3)
    assert labels.dtype == torch.long
    channels = images.reshape(64 * 3, 1, 64)
    is_bank_image = (channels == bank.reshape(1, -1, 64)).all(dim=2)  # (192, 1797)
    has_its_label = bank_labels.reshape(1, -1) == labels.reshape(-1, 1)
    assert (is_bank_image & has_its_label).any(dim=1).all()


def test_stacked_channels_are_independent_and_cover_all_modes():
    n = 50_000
    _, labels = make_stacked_digits(n, 8, torch.Generator().manual_seed(1))
    assert torch.unique(stacked_mode_ids(labels)).numel() == 1000

    # Channels draw images uniformly, so each class appears with its share of the 1,797 images
    # and a pair of channels with the product of the shares.
    _, bank_labels = load_digit_images(8)
    class_share = torch.bincount(bank_labels, minlength=10).double() / len(bank_labels)
    for channel in range(3):
        counts = torch.bincount(labels[:, channel], minlength=10).double()
        statistic = ((counts - n * class_share) ** 2 / (n * class_share)).sum().item()
        assert statistic < chi2.ppf(0.999, df=9)
    pair_share = torch.outer(class_share, class_share).flatten()
    for a, b in ((0, 1), (0, 2), (1, 2)):
        counts = torch.bincount(labels[:, a] * 10 + labels[:, b], minlength=100).double()
        statistic = ((counts - n * pair_share) ** 2 / (n * pair_share)).sum().item()
        assert statistic < chi2.ppf(0.999, df=99)


def test_stacked_mode_ids_read_the_triple_as_a_number():
    labels = torch.tensor([[0, 0, 0], [1, 2, 3], [9, 9, 9]])
    assert stacked_mode_ids(labels).tolist() == [0, 123, 999]


def test_stacked_datamodule_is_the_seeded_draw():
    dm = StackedDigits(image_size=16, batch_size=16, num_samples=300, seed=2)
    assert dm.kind == "images"
    assert dm.num_modes == 1000
    assert dm.sample_shape == (3, 16, 16)
    dm.setup("fit")
    images, labels = make_stacked_digits(300, 16, torch.Generator().manual_seed(2))
    training_images = torch.stack([dm.train_set[i] for i in range(300)])
    torch.testing.assert_close(training_images, images, rtol=0, atol=0)
    torch.testing.assert_close(dm.labels, labels, rtol=0, atol=0)

    batch = next(iter(dm.train_dataloader()))
    assert isinstance(batch, torch.Tensor)
    assert batch.shape == (16, 3, 16, 16)
    assert batch.dtype == torch.float32
    assert batch.min().item() >= -1.0
    assert batch.max().item() <= 1.0

    same = StackedDigits(image_size=16, num_samples=300, seed=2)
    other = StackedDigits(image_size=16, num_samples=300, seed=3)
    torch.testing.assert_close(same.labels, dm.labels, rtol=0, atol=0)
    assert not torch.equal(other.labels, dm.labels)


def test_stacked_real_samples_are_deterministic():
    dm = StackedDigits(image_size=8, num_samples=100)
    samples = dm.real_samples(50, seed=4)
    assert samples.shape == (50, 3, 8, 8)
    torch.testing.assert_close(samples, dm.real_samples(50, seed=4), rtol=0, atol=0)
    assert not torch.equal(samples, dm.real_samples(50, seed=5))


def test_stacked_sample_count_is_validated():
    with pytest.raises(ConfigError, match="data.num_samples"):
        StackedDigits(num_samples=0)
    with pytest.raises(ConfigError, match="data.batch_size"):
        StackedDigits(batch_size=64, num_samples=10).train_dataloader()


def _rows(images):
    return {tuple(image.flatten().tolist()) for image in images}


def test_digits_holdout_keeps_its_share_out_of_every_training_batch():
    data = Digits(image_size=8, batch_size=100, holdout=0.2, seed=3)
    train, held = data.split
    assert len(held) == round(0.2 * NUM_DIGITS) and len(train) + len(held) == NUM_DIGITS
    assert set(train.tolist()).isdisjoint(held.tolist())
    batches = [b[0] if isinstance(b, list) else b for b in data.train_dataloader()]
    assert _rows(torch.cat(batches)) <= _rows(data.images[train])
    assert _rows(data.heldout_samples(200, seed=1)) <= _rows(data.images[held])
    assert torch.equal(Digits(image_size=8, holdout=0.2, seed=3).split[1], held)  # fixed by seed


def test_no_holdout_trains_on_every_image_in_order_and_refuses_heldout_samples():
    data = Digits(image_size=8)
    train, held = data.split
    assert torch.equal(train, torch.arange(NUM_DIGITS)) and len(held) == 0
    with pytest.raises(ConfigError, match="holdout"):
        data.heldout_samples(10)


@pytest.mark.parametrize("holdout", [-0.1, 1.0])
def test_bad_holdout_is_refused(holdout):
    with pytest.raises(ConfigError, match="holdout"):
        Digits(holdout=holdout)


def test_stacked_holdout_builds_heldout_triples_from_unseen_digits():
    data = StackedDigits(image_size=8, num_samples=5000, holdout=0.25, seed=2)
    data.setup()
    train_bank, held_bank = data._bank_split
    assert set(data.train_set.picks.flatten().tolist()) <= set(train_bank.tolist())
    heldout = data.heldout_samples(300, seed=0)
    assert heldout.shape == (300, 3, 8, 8)
    bank = data.train_set.bank
    for channel in range(3):
        assert _rows(heldout[:, channel]) <= _rows(bank[held_bank])
    # Without a holdout the training triples are the draw they always were.
    plain = StackedDigits(image_size=8, num_samples=5000, seed=2)
    images, _ = make_stacked_digits(5000, 8, torch.Generator().manual_seed(2))
    assert torch.equal(plain.train_set[7], images[7])


def test_train_images_limits_training_to_a_prefix_of_the_same_split():
    full = Digits(image_size=8, holdout=0.1, seed=3)
    limited = Digits(image_size=8, batch_size=50, holdout=0.1, seed=3, train_images=100)
    assert torch.equal(limited.split[0], full.split[0][:100])
    assert torch.equal(limited.split[1], full.split[1])  # the held-out share is unchanged
    batches = [b[0] if isinstance(b, list) else b for b in limited.train_dataloader()]
    assert sum(len(b) for b in batches) == 100
    assert _rows(torch.cat(batches)) <= _rows(limited.images[limited.split[0]])


def test_bad_train_images_is_refused():
    with pytest.raises(ConfigError, match="train_images"):
        Digits(train_images=0)
