"""Lightning plugins of the package."""

from __future__ import annotations

from pytorch_lightning.plugins.layer_sync import LayerSync
from torch import nn

from gan_tricks.distributed import CROSS_RANK_BATCHNORM, swap_batchnorm


class CrossRankSyncBatchNorm(LayerSync):
    """Lightning's layer-sync plugin for :class:`CrossRankBatchNorm2d` (and 1d): what
    ``--trainer.sync_batchnorm true`` becomes when the run has no GPU (``gan-tricks fit`` swaps
    it in), or ``--trainer.plugins gan_tricks.lightning.CrossRankSyncBatchNorm`` by hand."""

    def apply(self, model: nn.Module) -> nn.Module:
        return swap_batchnorm(model, CROSS_RANK_BATCHNORM)

    def revert(self, model: nn.Module) -> nn.Module:
        return swap_batchnorm(model, {new: old for old, new in CROSS_RANK_BATCHNORM.items()})
