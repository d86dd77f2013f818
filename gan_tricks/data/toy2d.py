"""2D toy distributions on which mode collapse is visible at a glance and countable exactly.

The two mixtures use the parameters of PacGAN's released code (Lin, Khetan, Fanti and Oh 2018,
"PacGAN: The power of two samples in generative adversarial networks", NeurIPS;
github.com/fjxmlzn/PacGAN, ``synthetic_data_experiments/2DRing_GAN&PacGAN/config.py`` and
``.../2DGrid_GAN&PacGAN/config.py``), which follow VEEGAN (Srivastava et al. 2017), so numbers
measured here compare with the mode counts and high-quality-sample shares reported there:

* ``ring8``: 8 Gaussians with means (cos 2πi/8, sin 2πi/8), i = 0..7, std 0.01.
* ``grid25``: 25 Gaussians with means {-4, -2, 0, 2, 4}², std 0.05.
* ``spiral``: one continuous Swiss-roll arm with no discrete modes, a check that a trick which
  helps on mixtures does not simply cluster everything.

Training draws fresh samples forever instead of cycling through a fixed finite set, so a
discriminator cannot memorise the training points; the stream is still a pure function of the
seed and can be checkpointed and resumed (:class:`Toy2DStream`).
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset

from gan_tricks.data._common import (
    check_loader_settings,
    require_int,
    require_sample_count,
    seeded_generator,
)
from gan_tricks.data.base import GANDataModule
from gan_tricks.distributed import rank_slice, world
from gan_tricks.errors import ConfigError

TOY2D_NAMES = ("ring8", "grid25", "spiral")
MIXTURE_NAMES = ("ring8", "grid25")

RING8_STD = 0.01
GRID25_STD = 0.05
# The spiral follows scikit-learn's make_swiss_roll (t = 1.5π(1 + 2u), point t·(cos t, sin t)),
# divided by its largest radius 4.5π so it fits [-1, 1] like ring8; the noise is small next to the
# gap between neighbouring turns (about 0.44 after scaling) so the arm stays one visible curve.
SPIRAL_NOISE_STD = 0.02
_SPIRAL_MAX_RADIUS = 4.5 * math.pi


def _check_name(name: str) -> None:
    if name not in TOY2D_NAMES:
        raise ConfigError(
            f"data.name {name!r} is not a toy 2D data set; use one of {', '.join(TOY2D_NAMES)}."
        )


def mixture_modes(name: str) -> tuple[Tensor, float]:
    """Means (K, 2) float32 and the shared per-axis std of the Gaussian mixture ``name``.

    Evaluation counts a generated point as belonging to its nearest mode when it lies within
    3 std of it, the criterion of VEEGAN and PacGAN, so it needs exactly these numbers.
    """
    _check_name(name)
    if name == "ring8":
        angles = [2.0 * math.pi * i / 8 for i in range(8)]
        means = [(math.cos(a), math.sin(a)) for a in angles]
        return torch.tensor(means, dtype=torch.float32), RING8_STD
    if name == "grid25":
        axis = (-4.0, -2.0, 0.0, 2.0, 4.0)
        return torch.tensor(list(itertools.product(axis, axis)), dtype=torch.float32), GRID25_STD
    raise ConfigError(
        f"data.name {name!r} is a continuous spiral without discrete modes; use one of"
        f" {', '.join(MIXTURE_NAMES)} where modes are needed."
    )


def sample_toy2d(name: str, n: int, generator: torch.Generator) -> Tensor:
    """``n`` float32 points (n, 2) of the toy distribution ``name``, drawn only from ``generator``.

    Mixtures pick a mode uniformly, then add isotropic Gaussian noise of the mixture's std.
    """
    _check_name(name)
    require_sample_count(n)
    if name == "spiral":
        t = 1.5 * math.pi * (1.0 + 2.0 * torch.rand(n, generator=generator, dtype=torch.float64))
        arm = torch.stack((t * torch.cos(t), t * torch.sin(t)), dim=1) / _SPIRAL_MAX_RADIUS
        noise = SPIRAL_NOISE_STD * torch.randn(n, 2, generator=generator, dtype=torch.float64)
        return (arm + noise).to(torch.float32)
    means, std = mixture_modes(name)
    picks = torch.randint(len(means), (n,), generator=generator)
    return means[picks] + std * torch.randn(n, 2, generator=generator)


class Toy2DStream(IterableDataset[Tensor]):
    """An endless, seeded stream of whole batches, cut into epochs of ``batches_per_epoch``.

    Each pass (``iter``) yields exactly ``batches_per_epoch`` batches and the random stream
    carries on where the previous pass stopped, so epochs never repeat. ``state_dict`` holds the
    generator state and the number of batches drawn, enough to continue the stream exactly.

    Batches are drawn lazily, one per ``next``, so a pass that is abandoned early consumes only
    what was taken. The stream must be read in the main process: a worker process would get a
    copy of the generator, repeat the batches of other workers and keep its state to itself.

    Under N processes (DDP), every process draws the global batch (N x ``batch_size`` points)
    and keeps its own slice: the processes see disjoint points, together exactly the batch one
    process of the global batch size would draw, and their stream states stay equal.
    """

    def __init__(self, name: str, batch_size: int, batches_per_epoch: int, seed: int) -> None:
        _check_name(name)
        self.name = name
        self.batch_size = batch_size
        self.batches_per_epoch = batches_per_epoch
        self.generator = seeded_generator(seed)
        self.batches_drawn = 0

    def __len__(self) -> int:
        return self.batches_per_epoch

    def __iter__(self) -> Iterator[Tensor]:
        _, size = world()
        for _ in range(self.batches_per_epoch):
            batch = sample_toy2d(self.name, self.batch_size * size, self.generator)
            self.batches_drawn += 1
            yield rank_slice(batch)

    def state_dict(self) -> dict[str, Any]:
        """A copy of the stream position, safe to put in a checkpoint (tensors and ints only)."""
        return {"generator_state": self.generator.get_state(), "batches_drawn": self.batches_drawn}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue the stream from ``state``, as returned by :meth:`state_dict`."""
        self.generator.set_state(state["generator_state"].clone())
        self.batches_drawn = int(state["batches_drawn"])


class Toy2D(GANDataModule):
    """Samples of a 2D toy distribution (``ring8``, ``grid25`` or ``spiral``) for GAN training.

    ``num_workers`` is accepted for a uniform interface but the stream is always drawn in the
    main process: drawing a batch of 2D points takes microseconds, and worker processes would
    break reproducibility and resumption (see :class:`Toy2DStream`).
    """

    kind: str = "points"
    # PacGAN's protocol: 2,500 samples, shown whole in the pictures.
    eval_samples: int = 2500
    picture_samples: int = 2500

    def __init__(
        self,
        name: str = "ring8",
        batch_size: int = 256,
        batches_per_epoch: int = 500,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        _check_name(name)
        check_loader_settings(batch_size, num_workers, seed)
        require_int("data.batches_per_epoch", batches_per_epoch, 1, "batches in one epoch")
        if num_workers > 0:
            warnings.warn(
                f"data.num_workers={num_workers} is ignored by Toy2D, which draws its points in"
                " the main process so the stream stays reproducible; set it to 0 to silence this.",
                stacklevel=2,
            )
        self.name = name
        self.sample_shape: tuple[int, ...] = (2,)
        if name in MIXTURE_NAMES:
            modes, std = mixture_modes(name)
            self.modes: Tensor | None = modes
            self.std: float | None = std
        else:
            self.modes = None
            self.std = None
        # Built here rather than in setup so a checkpoint can be loaded into it at any time.
        self.stream = Toy2DStream(name, batch_size, batches_per_epoch, seed)

    def train_dataloader(self) -> DataLoader[Tensor]:
        # batch_size=None: the stream already yields whole batches.
        return DataLoader(self.stream, batch_size=None, num_workers=0)

    def real_samples(self, n: int, seed: int = 0) -> Tensor:
        """``n`` fresh points (n, 2), deterministic for ``seed`` and independent of training."""
        return sample_toy2d(self.name, n, seeded_generator(seed))

    def heldout_samples(self, n: int, seed: int = 0) -> Tensor:
        """Fresh points, like :meth:`real_samples`: the mixture has no finite training set, so
        every point D has not trained on is held out."""
        return self.real_samples(n, seed)

    def evaluate(
        self,
        samples: Tensor,
        seed: int = 0,
        feature_metrics: bool = True,
        inception_weights: str | None = None,
    ) -> dict[str, Any]:
        """A mixture's modes covered, high-quality share and reverse KL (PacGAN's protocol);
        the spiral, which has no modes, gets the diversity ratio alone."""
        if self.modes is None:
            return super().evaluate(samples, seed, feature_metrics, inception_weights)
        from gan_tricks.metrics.mixture import mixture_metrics  # builds on the data modules

        return {"dataset": self.name, **mixture_metrics(samples, self.modes, self.std)}

    def state_dict(self) -> dict[str, Any]:
        """Lightning stores this in checkpoints, so a resumed run continues the same stream."""
        return {"stream": self.stream.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.stream.load_state_dict(state_dict["stream"])
