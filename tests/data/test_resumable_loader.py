"""The training loaders' position survives a checkpoint: a new loader given the old one's
``state_dict`` yields exactly the batches the old one would have yielded next."""

import itertools

import pytest
import torch

from gan_tricks.data import _common as common
from gan_tricks.data._common import ResumableLoader, TensorImages, make_train_loader

SIZE, BATCH = 50, 8  # 6 batches an epoch, 2 samples dropped


def numbered() -> TensorImages:
    return TensorImages(torch.arange(SIZE, dtype=torch.float32).reshape(SIZE, 1))


def take(loader: ResumableLoader, batches: int) -> list[torch.Tensor]:
    """``batches`` batches over as many epochs as it takes, as a training loop draws them."""
    out = []
    while len(out) < batches:
        for batch in loader:
            out.append(batch)
            if len(out) == batches:
                break
    return out


@pytest.mark.parametrize("stop", [1, 5, 6, 7, 13], ids=lambda n: f"after {n} batches")
@pytest.mark.parametrize("workers", [0, 2], ids=["in process", "2 workers"])
def test_a_new_loader_resumes_where_the_old_one_stopped(stop, workers):
    whole = take(make_train_loader(numbered(), BATCH, 0, seed=4), stop + 8)

    first = make_train_loader(numbered(), BATCH, workers, seed=4)
    assert all(torch.equal(a, b) for a, b in zip(take(first, stop), whole, strict=False))
    resumed = make_train_loader(numbered(), BATCH, workers, seed=4)
    resumed.load_state_dict(first.state_dict())

    rest = take(resumed, 8)
    assert all(torch.equal(a, b) for a, b in zip(rest, whole[stop:], strict=True))


def test_every_epoch_is_a_fresh_order_of_every_sample_once():
    loader = make_train_loader(numbered(), BATCH, 0, seed=4)
    epochs = [torch.cat(list(loader)).flatten() for _ in range(3)]
    for epoch in epochs:
        assert len(epoch) == 48 and len(set(epoch.tolist())) == 48
    assert not torch.equal(epochs[0], epochs[1]) and not torch.equal(epochs[1], epochs[2])
    other_seed = torch.cat(list(make_train_loader(numbered(), BATCH, 0, seed=5))).flatten()
    assert not torch.equal(epochs[0], other_seed)


def test_the_state_after_an_epochs_last_batch_points_at_the_next_epoch():
    loader = make_train_loader(numbered(), BATCH, 0, seed=4)
    iterator = iter(loader)
    for _ in range(len(loader)):
        next(iterator)
    assert loader.state_dict() == {"epoch": 1, "batches_done": 0}


def test_a_pass_stopped_at_its_length_is_followed_by_a_whole_fresh_epoch():
    # Lightning stops after len(loader) batches without asking for one more, so code after the
    # loop of a generator never runs; the next pass once came out empty, every other epoch.
    loader = make_train_loader(numbered(), BATCH, 0, seed=4)
    first = list(itertools.islice(iter(loader), len(loader)))
    second = list(itertools.islice(iter(loader), len(loader)))
    assert len(first) == len(second) == len(loader)
    assert not torch.equal(torch.cat(first), torch.cat(second))  # the next epoch's order
    assert loader.state_dict() == {"epoch": 2, "batches_done": 0}


@pytest.mark.parametrize("processes", [2, 3])
def test_processes_share_out_each_batch_of_one_process_with_the_global_batch(
    monkeypatch, processes
):
    # Under DDP, N loaders of batch B (one per rank) hold together, batch for batch, the samples
    # of one loader of batch N * B: the property a 2-process run matching 1 process rests on.
    single = take(make_train_loader(numbered(), BATCH * processes, 0, seed=4), 7)
    per_rank = []
    for rank in range(processes):
        monkeypatch.setattr(common, "world", lambda rank=rank: (rank, processes))
        loader = make_train_loader(numbered(), BATCH, 0, seed=4)
        assert len(loader) == SIZE // (BATCH * processes)
        per_rank.append(take(loader, 7))
    for k, expected in enumerate(single):
        together = torch.cat([batches[k] for batches in per_rank]).flatten()
        assert sorted(together.tolist()) == sorted(expected.flatten().tolist())


def test_a_batch_larger_than_each_process_share_is_one_sentence(monkeypatch):
    from gan_tricks.errors import ConfigError

    monkeypatch.setattr(common, "world", lambda: (0, 2))
    with pytest.raises(ConfigError, match="25 samples per process of 2; lower data.batch_size"):
        make_train_loader(numbered(), 32, 0, seed=0)  # 50 samples: 25 each
