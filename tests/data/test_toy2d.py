from __future__ import annotations

import io
import itertools
import math

import pytest
import torch

from gan_tricks.data import Toy2D, Toy2DStream, mixture_modes, sample_toy2d
from gan_tricks.errors import ConfigError

# Share of a 2D isotropic Gaussian within 3 std of its mean: the chi distribution with 2 degrees
# of freedom gives P(|x| <= 3 std) = 1 - exp(-3² / 2).
WITHIN_3_STD = 1.0 - math.exp(-4.5)


def _take(iterator, count):
    return [next(iterator) for _ in range(count)]


def test_ring8_means_and_std_are_pacgans():
    modes, std = mixture_modes("ring8")
    expected = torch.tensor(
        [(math.cos(2 * math.pi * i / 8), math.sin(2 * math.pi * i / 8)) for i in range(8)]
    )
    assert modes.dtype == torch.float32
    torch.testing.assert_close(modes, expected, atol=1e-7, rtol=0)
    assert std == 0.01


def test_grid25_means_and_std_are_pacgans():
    modes, std = mixture_modes("grid25")
    expected = set(itertools.product((-4.0, -2.0, 0.0, 2.0, 4.0), repeat=2))
    assert modes.shape == (25, 2)
    assert {tuple(mode.tolist()) for mode in modes} == expected
    assert std == 0.05


@pytest.mark.parametrize("name", ["ring8", "grid25"])
def test_datamodule_exposes_the_mixture(name):
    dm = Toy2D(name=name)
    modes, std = mixture_modes(name)
    assert dm.kind == "points"
    assert dm.sample_shape == (2,)
    assert dm.name == name
    torch.testing.assert_close(dm.modes, modes)
    assert dm.std == std


@pytest.mark.parametrize("name", ["ring8", "grid25"])
def test_mixture_samples_sit_on_uniformly_weighted_modes(name):
    modes, std = mixture_modes(name)
    n = 40_000
    points = sample_toy2d(name, n, torch.Generator().manual_seed(0))
    assert points.shape == (n, 2)
    assert points.dtype == torch.float32

    distances = torch.cdist(points, modes)
    nearest_distance, nearest_mode = distances.min(dim=1)
    share_within = (nearest_distance <= 3 * std).float().mean().item()
    assert share_within == pytest.approx(WITHIN_3_STD, abs=0.004)

    # Residuals to the nearest mode must have the mixture's std on each axis.
    residuals = points - modes[nearest_mode]
    torch.testing.assert_close(residuals.std(dim=0), torch.full((2,), std), rtol=0.03, atol=0)

    counts = torch.bincount(nearest_mode, minlength=len(modes)).float()
    expected = n / len(modes)
    assert (counts - expected).abs().max().item() < 0.12 * expected


def test_spiral_is_a_continuous_arm_in_the_unit_square():
    points = sample_toy2d("spiral", 20_000, torch.Generator().manual_seed(0))
    assert points.shape == (20_000, 2)
    assert points.abs().max().item() < 1.15
    radius = points.norm(dim=1)
    # t runs over [1.5π, 4.5π], so radii (t / 4.5π) fill [1/3, 1] evenly.
    assert radius.min().item() > 0.25
    assert radius.max().item() > 0.95
    assert radius.median().item() == pytest.approx(2 / 3, abs=0.03)

    dm = Toy2D(name="spiral")
    assert dm.modes is None
    assert dm.std is None
    with pytest.raises(ConfigError, match="spiral"):
        mixture_modes("spiral")


def test_unknown_name_lists_valid_names():
    with pytest.raises(ConfigError) as error:
        Toy2D(name="ring7")
    message = str(error.value)
    assert "data.name" in message
    for valid in ("ring8", "grid25", "spiral"):
        assert valid in message
    with pytest.raises(ConfigError):
        sample_toy2d("moons", 4, torch.Generator())


@pytest.mark.parametrize(
    "kwargs, setting",
    [
        ({"batch_size": 0}, "data.batch_size"),
        ({"batches_per_epoch": 0}, "data.batches_per_epoch"),
        ({"num_workers": -1}, "data.num_workers"),
        ({"seed": -1}, "data.seed"),
        ({"batch_size": 2.5}, "data.batch_size"),
    ],
)
def test_bad_settings_name_the_setting(kwargs, setting):
    with pytest.raises(ConfigError, match=setting):
        Toy2D(**kwargs)


def test_workers_are_ignored_with_a_warning():
    with pytest.warns(UserWarning, match="num_workers"):
        dm = Toy2D(num_workers=2)
    assert dm.train_dataloader().num_workers == 0


def test_loader_length_and_batches():
    dm = Toy2D(name="grid25", batch_size=32, batches_per_epoch=7, seed=3)
    dm.setup("fit")
    loader = dm.train_dataloader()
    assert len(loader) == 7
    batches = list(loader)
    assert len(batches) == 7
    for batch in batches:
        assert isinstance(batch, torch.Tensor)
        assert batch.shape == (32, 2)
        assert batch.dtype == torch.float32


def test_same_seed_same_stream_and_other_seed_other_stream():
    first = list(Toy2D(name="ring8", batch_size=16, batches_per_epoch=4, seed=7).train_dataloader())
    again = list(Toy2D(name="ring8", batch_size=16, batches_per_epoch=4, seed=7).train_dataloader())
    other = list(Toy2D(name="ring8", batch_size=16, batches_per_epoch=4, seed=8).train_dataloader())
    for a, b in zip(first, again, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(first[0], other[0])


def test_epochs_continue_the_stream_instead_of_repeating():
    dm = Toy2D(name="grid25", batch_size=8, batches_per_epoch=3, seed=1)
    loader = dm.train_dataloader()
    epoch_1, epoch_2 = list(loader), list(loader)
    assert not torch.equal(epoch_1[0], epoch_2[0])
    # Two epochs of 3 batches are the first 6 batches of the same seeded stream.
    one_long_epoch = list(Toy2D(name="grid25", batch_size=8, batches_per_epoch=6, seed=1).stream)
    for a, b in zip(epoch_1 + epoch_2, one_long_epoch, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert dm.stream.batches_drawn == 6


def test_stream_restored_from_state_continues_the_same_stream():
    stream = Toy2DStream("grid25", batch_size=16, batches_per_epoch=10, seed=5)
    batches = iter(stream)
    _take(batches, 4)
    # Through torch.save/load with weights_only, as a Lightning checkpoint would store it.
    buffer = io.BytesIO()
    torch.save(stream.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    expected = _take(batches, 3)

    restored = Toy2DStream("grid25", batch_size=16, batches_per_epoch=10, seed=99)
    restored.load_state_dict(state)
    assert restored.batches_drawn == 4
    for a, b in zip(_take(iter(restored), 3), expected, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert restored.batches_drawn == 7


def test_datamodule_state_round_trip():
    dm = Toy2D(name="ring8", batch_size=8, batches_per_epoch=5, seed=2)
    loader = iter(dm.train_dataloader())
    _take(loader, 2)
    state = dm.state_dict()
    expected = _take(loader, 2)

    resumed = Toy2D(name="ring8", batch_size=8, batches_per_epoch=5, seed=2)
    resumed.load_state_dict(state)
    got = _take(iter(resumed.train_dataloader()), 2)
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_real_samples_are_deterministic_and_independent_of_training():
    dm = Toy2D(name="grid25", seed=0)
    a = dm.real_samples(100, seed=4)
    next(iter(dm.train_dataloader()))
    b = dm.real_samples(100, seed=4)
    assert a.shape == (100, 2)
    assert a.dtype == torch.float32
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(a, dm.real_samples(100, seed=5))
    assert dm.real_samples(0).shape == (0, 2)


def test_hyperparameters_are_saved():
    dm = Toy2D(name="spiral", batch_size=4, batches_per_epoch=2, seed=9)
    assert dict(dm.hparams) == {
        "name": "spiral",
        "batch_size": 4,
        "batches_per_epoch": 2,
        "num_workers": 0,
        "seed": 9,
    }


def test_processes_each_keep_their_slice_of_the_global_batch(monkeypatch):
    # Under DDP each rank draws the global batch and keeps its rows: disjoint points that are,
    # together, the batch one process of the global size draws, and equal stream states.
    import gan_tricks.data.toy2d as toy2d
    import gan_tricks.distributed as distributed

    single = list(Toy2DStream("grid25", batch_size=32, batches_per_epoch=3, seed=5))
    slices, streams = [], []
    for rank in range(2):
        monkeypatch.setattr(toy2d, "world", lambda rank=rank: (rank, 2))
        monkeypatch.setattr(distributed, "world", lambda rank=rank: (rank, 2))
        streams.append(Toy2DStream("grid25", batch_size=16, batches_per_epoch=3, seed=5))
        slices.append(list(streams[-1]))
    for k, expected in enumerate(single):
        torch.testing.assert_close(
            torch.cat([slices[0][k], slices[1][k]]), expected, rtol=0, atol=0
        )
    assert torch.equal(streams[0].generator.get_state(), streams[1].generator.get_state())
