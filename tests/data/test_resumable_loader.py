"""The training loaders' position survives a checkpoint: a new loader given the old one's
``state_dict`` yields exactly the batches the old one would have yielded next."""

import pytest
import torch

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
