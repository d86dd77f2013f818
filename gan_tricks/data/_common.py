"""Helpers shared by the DataModules: setting checks, seeded generators and the training loader.

Every DataModule validates its constructor values here so that a bad recipe fails with one
:class:`~gan_tricks.errors.ConfigError` sentence before any data is touched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from torchvision.transforms import v2

from gan_tricks.distributed import world
from gan_tricks.errors import ConfigError

# Images are scaled from [0, 1] to [-1, 1] with mean 0.5 and std 0.5 per channel, matching the
# tanh output of DCGAN-style generators (Radford et al. 2016, "Unsupervised Representation
# Learning with Deep Convolutional GANs", section 3).
NORMALIZE_MEAN = 0.5
NORMALIZE_STD = 0.5


def require_int(setting: str, value: int, minimum: int, meaning: str) -> None:
    """Raise ConfigError unless ``value`` is an int (not a bool) of at least ``minimum``.

    ``setting`` is the name a user types (``data.batch_size``) so the message tells them what to
    edit; ``meaning`` says in a few words what the number counts.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(
            f"{setting} must be a whole number ({meaning}), got {value!r}; set it to an integer."
        )
    if value < minimum:
        raise ConfigError(
            f"{setting} must be at least {minimum} ({meaning}), got {value}; raise it to {minimum}"
            " or more."
        )


def check_loader_settings(batch_size: int, num_workers: int, seed: int) -> None:
    """Validate the three settings every DataModule shares."""
    require_int("data.batch_size", batch_size, 1, "samples per training batch")
    require_int("data.num_workers", num_workers, 0, "loader worker processes, 0 loads in-process")
    require_int("data.seed", seed, 0, "seed of the data order")


def require_sample_count(n: int) -> None:
    """``real_samples(n)`` and the pure sampling functions accept zero but not negative counts."""
    require_int("n", n, 0, "number of samples to draw")


def seeded_generator(seed: int) -> torch.Generator:
    """A CPU generator of its own: data randomness neither depends on nor disturbs global RNG."""
    return torch.Generator().manual_seed(seed)


def sample_indices(population: int, n: int, seed: int) -> Tensor:
    """``n`` indices into a data set of ``population`` items, deterministic for ``seed``.

    Distinct indices while the data set is large enough, so small evaluation draws hold no
    duplicates; with replacement beyond that, so any ``n`` works.
    """
    generator = seeded_generator(seed)
    if n <= population:
        return torch.randperm(population, generator=generator)[:n]
    return torch.randint(population, (n,), generator=generator)


def stack_items(dataset: Dataset[Tensor], indices: Tensor, sample_shape: Sequence[int]) -> Tensor:
    """Stack ``dataset[i]`` for ``indices`` into a float32 batch (an empty one keeps its shape)."""
    if len(indices) == 0:
        return torch.empty((0, *sample_shape), dtype=torch.float32)
    return torch.stack([dataset[int(i)] for i in indices]).to(torch.float32)


class TensorImages(Dataset[Tensor]):
    """Images already in memory as one (N, C, H, W) tensor; items are bare images, no labels."""

    def __init__(self, images: Tensor) -> None:
        self.images = images

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> Tensor:
        return self.images[index]


class ResumableShuffle(DistributedSampler):
    """Every index once per epoch, in a fresh order each epoch, that can start mid-epoch, and
    is shared out between the processes of a distributed run.

    Epoch ``e``'s order is a function of ``(seed, e)`` alone, so a resumed run rebuilds it
    without replaying earlier epochs; ``start`` skips the indices this process has already
    trained on. The owner (:class:`ResumableLoader`) sets both before each pass.

    Under N processes, rank ``r`` takes every N-th index of the same order from ``r`` on (the
    order cut to a multiple of N), as ``DistributedSampler`` does: batch ``k`` of the N ranks
    together holds exactly the samples of batch ``k`` of one process with an N times larger
    batch. Being a ``DistributedSampler`` keeps Lightning from replacing it with its own; the
    rank and world size are read at each pass, not at construction, so the loader can be built
    before the process group exists.
    """

    def __init__(self, size: int, seed: int) -> None:  # no super().__init__: see above
        self.size = size
        self.seed = seed
        self.epoch = 0
        self.start = 0
        self.shuffle = True
        self.drop_last = True

    @property
    def rank(self) -> int:  # type: ignore[override]
        return world()[0]

    @property
    def num_replicas(self) -> int:  # type: ignore[override]
        return world()[1]

    def order(self, epoch: int) -> Tensor:
        """The whole data set's order in ``epoch``, before it is shared out."""
        # NumPy's SeedSequence mixes the pair into one well-spread 32-bit seed (torch's CPU
        # generator keeps only 32 bits of a seed, so seed * 2**32 + epoch would not do).
        mixed = int(np.random.SeedSequence([self.seed, epoch]).generate_state(1)[0])
        return torch.randperm(self.size, generator=seeded_generator(mixed))

    def shard(self, epoch: int) -> Tensor:
        """This process's indices of ``epoch``, in order."""
        rank, size = world()
        return self.order(epoch)[: self.size - self.size % size][rank::size]

    def __len__(self) -> int:
        return self.size // self.num_replicas - self.start

    def __iter__(self) -> Iterator[int]:
        return iter(self.shard(self.epoch)[self.start :].tolist())


class ResumableLoader(DataLoader):
    """A shuffled DataLoader whose ``state_dict`` is its position: the epoch, and the batches
    of it already handed to training.

    Lightning saves the state of a training loader that has ``state_dict`` and
    ``load_state_dict`` in every checkpoint, and loads it into the new loader before iterating,
    so a run resumed mid-epoch sees exactly the batches the uninterrupted run would have seen.
    The position counts the batches this loader has *yielded*, not the indices its sampler has
    produced (worker processes fetch ahead); Lightning does not prefetch from a loader whose
    length it knows, so at a checkpoint every yielded batch has been trained on.
    """

    def __init__(self, dataset: Dataset[Any], batch_size: int, seed: int, **kwargs: Any) -> None:
        self.shuffle_sampler = ResumableShuffle(len(dataset), seed)  # type: ignore[arg-type]
        super().__init__(
            dataset, batch_size=batch_size, sampler=self.shuffle_sampler, drop_last=True, **kwargs
        )
        self.epoch = 0
        self.batches_done = 0

    def __len__(self) -> int:
        # Whole epochs: Lightning sizes an epoch by this, and a resumed pass is just shorter.
        # Under N processes each holds 1/N of the data (the same count of batches N times).
        return len(self.dataset) // world()[1] // self.batch_size  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[Any]:
        # A pass that yielded all its batches is over even if nobody asked for one more (which
        # would run code after the loop below): Lightning stops at ``len`` batches.
        if self.batches_done >= len(self):
            self.epoch += 1
            self.batches_done = 0
        self.shuffle_sampler.epoch = self.epoch
        self.shuffle_sampler.start = self.batches_done * self.batch_size
        for batch in super().__iter__():
            self.batches_done += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        if self.batches_done >= len(self):  # the epoch's last batch: resume at the next epoch
            return {"epoch": self.epoch + 1, "batches_done": 0}
        return {"epoch": self.epoch, "batches_done": self.batches_done}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch = int(state["epoch"])
        self.batches_done = int(state["batches_done"])


def make_train_loader(
    dataset: Dataset[Any],
    batch_size: int,
    num_workers: int,
    seed: int,
    collate_fn: Callable[[list[Any]], Tensor] | None = None,
) -> ResumableLoader:
    """A shuffled, resumable training loader that drops the last partial batch.

    drop_last because a final batch of one sample breaks BatchNorm in training mode and a short
    batch skews per-batch statistics such as minibatch discrimination; the shuffle order is a
    function of ``seed`` and the epoch alone (:class:`ResumableShuffle`), and the loader's own
    generator (which seeds worker processes) keeps the global one untouched.
    """
    size = len(dataset)  # type: ignore[arg-type]
    processes = world()[1]
    share = size // processes  # under DDP, each process holds its share of the set
    if share < batch_size:
        held = (
            f"{size} samples" if processes == 1 else f"{share} samples per process of {processes}"
        )
        raise ConfigError(
            f"data.batch_size is {batch_size} but the training set holds only {held};"
            f" lower data.batch_size to {share} or less."
        )
    return ResumableLoader(
        dataset,
        batch_size=batch_size,
        seed=seed,
        generator=seeded_generator(seed),
        num_workers=num_workers,
        # Re-forking workers every epoch costs seconds on large image sets.
        persistent_workers=num_workers > 0,
        pin_memory=torch.cuda.is_available(),
        collate_fn=collate_fn,
    )


def image_transform(image_size: int, channels: int) -> Callable[[Any], Tensor]:
    """PIL image -> float32 tensor (channels, image_size, image_size) in [-1, 1].

    Resize scales the shorter side to ``image_size`` and CenterCrop cuts the square, the DCGAN
    CelebA recipe (Radford et al. 2016) that keeps the aspect ratio; square sources are merely
    resized, and a source already at ``image_size`` passes unchanged (PIL returns a copy).
    """
    return v2.Compose(
        [
            v2.Resize(image_size, antialias=True),
            v2.CenterCrop(image_size),
            v2.ToImage(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize([NORMALIZE_MEAN] * channels, [NORMALIZE_STD] * channels),
        ]
    )


def check_holdout(holdout: float) -> None:
    if not 0 <= holdout < 1:
        raise ConfigError(
            f"data.holdout must be in [0, 1) (got {holdout}): the share of images kept out "
            "of training."
        )


def holdout_split(population: int, holdout: float, seed: int) -> tuple[Tensor, Tensor]:
    """Indices (train, held out) of a data set, ``holdout`` of it held out, fixed by ``seed``.

    With ``holdout`` 0 every index trains, in order, so a run without a held-out set sees
    exactly the data it saw before the option existed.
    """
    held = round(population * holdout)
    if held == 0:
        return torch.arange(population), torch.empty(0, dtype=torch.long)
    order = torch.randperm(population, generator=seeded_generator(seed))
    return order[held:].sort().values, order[:held].sort().values


def no_heldout_data(data: str) -> ConfigError:
    return ConfigError(
        f"{data} holds no images out of training; set data.init_args.holdout (e.g. 0.1) to "
        "compare D on unseen real data."
    )
