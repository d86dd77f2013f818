"""The Lightning adapter: :class:`GANModule` drives the engine on Lightning's public API.

Nothing else in the package imports Lightning except the ``gan-tricks`` command and the
data modules (Lightning ``LightningDataModule`` subclasses).
"""

from gan_tricks.lightning.module import GANModule
from gan_tricks.lightning.plugins import CrossRankSyncBatchNorm
from gan_tricks.lightning.quality import QualityProbe, read_quality

__all__ = ["CrossRankSyncBatchNorm", "GANModule", "QualityProbe", "read_quality"]
