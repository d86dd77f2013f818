"""Fail fast when the real data's range and the generator's output range disagree (ganhacks #1)."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset

from gan_tricks.errors import ConfigError
from gan_tricks.functional.checks import check_input_range, output_range
from gan_tricks.tricks.base import Trick

__all__ = ["InputRangeCheck", "first_real_samples"]


def first_real_samples(loader: DataLoader, n: int) -> Tensor:
    """The first ``n`` samples of a loader's data set, without drawing from its shuffle RNG.

    Reading the data set by index, rather than iterating the loader, leaves the training
    order of a seeded loader as it would be without the check; an iterable data set gives
    its first batch instead.
    """
    dataset = loader.dataset
    if isinstance(dataset, IterableDataset) or not hasattr(dataset, "__len__"):
        batch: Any = next(iter(loader))
    else:
        batch = loader.collate_fn([dataset[i] for i in range(min(n, len(dataset)))])
    return batch[0] if isinstance(batch, list | tuple) else batch


class InputRangeCheck(Trick):
    """Check once, before the first step, that real data fits G's output layer (ganhacks #1).

    ganhacks #1 (after Radford et al. 2016, DCGAN): normalise images to [-1, 1] and end the
    generator in tanh. Looks at ``num_samples`` real samples (``datamodule.real_samples`` when
    there is one, else the start of the training set) and at G's last module (Tanh, Sigmoid,
    Hardtanh or unbounded) and raises ConfigError when the data leaves G's range, uses only
    the positive half of tanh's, or is images under an unbounded G. Runs at train start, the
    first moment a plain dataloader is ready to be read.
    """

    def __init__(self, num_samples: int = 512) -> None:
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
            raise ConfigError(
                f"InputRangeCheck num_samples must be a whole number >= 1 (got {num_samples!r})."
            )
        self.num_samples = num_samples

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        datamodule = getattr(trainer, "datamodule", None)
        if hasattr(datamodule, "real_samples"):
            real = datamodule.real_samples(self.num_samples, seed=0)
        else:
            loader = trainer.train_dataloader
            if not isinstance(loader, DataLoader):
                return  # several loaders or an unknown iterable: nothing sure to read
            real = first_real_samples(loader, self.num_samples)
        kind = getattr(datamodule, "kind", None)
        is_image = kind == "images" if kind is not None else real.dim() >= 4
        check_input_range(real.detach().float(), output_range(pl_module.generator), is_image)
