"""The reservoir of past fakes and the mix of old and fresh fakes D sees."""

import pytest
import torch

from gan_tricks.errors import ConfigError
from gan_tricks.functional.replay import ReplayBuffer, replay_mix


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def ids(start: int, count: int) -> torch.Tensor:
    """Rows that carry their own item number, (count, 2)."""
    numbers = torch.arange(start, start + count, dtype=torch.float32)
    return torch.stack([numbers, -numbers], dim=1)


def test_the_buffer_fills_in_order_then_stays_at_capacity():
    buffer = ReplayBuffer(10)
    assert len(buffer) == 0
    buffer.push(ids(0, 4))
    assert len(buffer) == 4 and torch.equal(buffer.storage[:4], ids(0, 4))
    buffer.push(ids(4, 30), seeded())
    assert len(buffer) == 10 and buffer.seen == 34
    stored = buffer.storage[:, 0]
    assert stored.unique().numel() == 10 and (stored < 34).all()
    assert torch.equal(buffer.storage[:, 1], -stored)  # rows are kept whole


def sequential_reservoir(capacity: int, batches: list[torch.Tensor], seed: int) -> torch.Tensor:
    """Slow reference: Vitter's algorithm R one item at a time, with the same random draws."""
    generator = seeded(seed)
    storage: list[torch.Tensor] = []
    seen = 0
    for batch in batches:
        free = max(0, min(capacity - seen, len(batch)))
        storage.extend(batch[:free])
        rest = batch[free:]
        if len(rest):
            draws = torch.rand(len(rest), generator=generator, dtype=torch.float64)
            for offset, row in enumerate(rest):
                number = seen + free + offset
                slot = int(draws[offset] * (number + 1))
                if slot < capacity:
                    storage[slot] = row
        seen += len(batch)
    return torch.stack(storage)


def test_vectorised_push_matches_the_sequential_algorithm():
    batches = [ids(0, 7), ids(7, 16), ids(23, 16), ids(39, 40)]
    buffer = ReplayBuffer(12)
    generator = seeded(4)
    for batch in batches:
        buffer.push(batch, generator)
    # Large batches into a small reservoir make several rows pick one slot: the last one wins.
    assert torch.equal(buffer.storage, sequential_reservoir(12, batches, seed=4))


def test_every_item_pushed_is_kept_with_the_same_probability():
    capacity, total, trials = 10, 50, 1000
    counts = torch.zeros(total)
    generator = seeded(1)
    for _ in range(trials):
        buffer = ReplayBuffer(capacity)
        for start in range(0, total, 5):
            buffer.push(ids(start, 5), generator)
        counts[buffer.storage[:, 0].long()] += 1
    frequency = counts / trials
    # capacity / total = 0.2 for every item, early or late (binomial std 0.013).
    assert (frequency - 0.2).abs().max() < 0.055
    assert frequency[:25].mean().item() == pytest.approx(0.2, abs=0.01)
    assert frequency[25:].mean().item() == pytest.approx(0.2, abs=0.01)


def test_sample_draws_stored_items_uniformly():
    buffer = ReplayBuffer(20)
    buffer.push(ids(0, 8))
    few = buffer.sample(8, seeded())
    assert sorted(few[:, 0].tolist()) == list(range(8))  # without replacement while it can
    many = buffer.sample(16_000, seeded())
    counts = torch.bincount(many[:, 0].long(), minlength=8).float()
    assert (counts / 2000 - 1).abs().max() < 0.08
    with pytest.raises(ConfigError, match="empty"):
        ReplayBuffer(5).sample(1)


def test_state_dict_round_trip_continues_identically():
    buffer = ReplayBuffer(6)
    buffer.push(ids(0, 9), seeded())
    copy = ReplayBuffer(1)
    copy.load_state_dict(buffer.state_dict())
    assert len(copy) == 6 and copy.seen == 9 and torch.equal(copy.storage, buffer.storage)
    buffer.push(ids(9, 9), seeded(2))
    copy.push(ids(9, 9), seeded(2))
    assert torch.equal(copy.storage, buffer.storage)
    empty = ReplayBuffer(3)
    empty.load_state_dict(ReplayBuffer(3).state_dict())
    assert len(empty) == 0


def test_bad_capacity_and_shape_raise_config_errors():
    for capacity in (0, -1, 2.5, True):
        with pytest.raises(ConfigError, match="capacity"):
            ReplayBuffer(capacity)
    buffer = ReplayBuffer(4)
    buffer.push(torch.zeros(2, 2))
    with pytest.raises(ConfigError, match="shape"):
        buffer.push(torch.zeros(2, 3))


def test_replay_mix_replaces_the_stated_share_on_average():
    buffer = ReplayBuffer(100)
    buffer.push(ids(1000, 100))
    fresh = ids(0, 16)
    generator = seeded(3)
    counts = []
    for _ in range(2000):
        mixed = replay_mix(fresh, buffer, 0.3, generator)
        old = mixed[:, 0] >= 1000
        # Fresh rows stay where they were; replaced rows are whole buffer items.
        assert torch.equal(mixed[~old], fresh[~old])
        assert torch.equal(mixed[old, 1], -mixed[old, 0])
        counts.append(int(old.sum()))
    assert set(counts) == {4, 5}  # 0.3 x 16 = 4.8, rounded at random
    assert sum(counts) / len(counts) == pytest.approx(4.8, abs=0.03)


def test_replay_mix_edge_cases_and_gradients():
    fresh = ids(0, 8).requires_grad_()
    empty = ReplayBuffer(10)
    assert replay_mix(fresh, empty, 0.5) is fresh
    buffer = ReplayBuffer(10)
    buffer.push(ids(100, 3))
    mixed = replay_mix(fresh, buffer, 1.0, seeded())
    assert int((mixed[:, 0] >= 100).sum()) == 3  # no more than the buffer holds
    mixed.sum().backward()
    kept = (mixed[:, 0] < 100).float()
    assert torch.equal(fresh.grad[:, 0], kept)  # fresh rows keep their gradient
    with pytest.raises(ConfigError, match="share"):
        replay_mix(fresh, buffer, 1.5)
