"""Experience replay of old fakes in D's steps: a thin trick over ``functional.replay``."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from gan_tricks.engine.context import StepContext
from gan_tricks.errors import ConfigError
from gan_tricks.functional.replay import ReplayBuffer, replay_mix
from gan_tricks.tricks.base import ORDER_REPLAY, Trick


class ExperienceReplay(Trick):
    """Experience replay (Shrivastava et al. 2017, SimGAN; ganhacks #8).

    In every D step a ``share`` of the fake batch is replaced by fakes of earlier steps, drawn
    from a reservoir of ``capacity`` past fakes
    (:class:`~gan_tricks.functional.replay.ReplayBuffer`); then the fresh, detached batch is
    offered to the reservoir. The G step always sees fresh fakes: old ones carry no gradient
    to G. Runs before the other transforms, so augmentation and packing see the mixed batch.

    The buffer is saved in checkpoints: capacity x sample size floats (10,000 2D points is
    80 KB; 10,000 3x32x32 images is 123 MB), kept on the training device.

    Args:
        capacity: how many past fakes the reservoir holds.
        share: the expected share of each D step's fake batch taken from the reservoir (0.5 in
            SimGAN).
    """

    order = ORDER_REPLAY

    def __init__(self, capacity: int = 10_000, share: float = 0.5) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ConfigError(
                f"ExperienceReplay capacity must be an integer >= 1 (got {capacity})."
            )
        if not 0.0 <= share <= 1.0:
            raise ConfigError(f"ExperienceReplay share must be in [0, 1] (got {share}).")
        self.share = share
        self.buffer = ReplayBuffer(capacity)

    def transform_fake(self, ctx: StepContext, fake: Tensor) -> Tensor:
        if ctx.phase != "d":
            return fake
        mixed = replay_mix(fake, self.buffer, self.share)
        self.buffer.push(fake)
        return mixed

    def state_dict(self) -> dict[str, Any]:
        return {"buffer": self.buffer.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.buffer.load_state_dict(state_dict["buffer"])
