"""Experience replay: show D old fakes next to fresh ones, so it remembers where G has been.

Shrivastava et al. 2017, "Learning from simulated and unsupervised images through adversarial
training" (SimGAN), section 2.3, "updating the discriminator using a history of refined
images"; ganhacks #8 ("use stability tricks from RL: experience replay"). A D that only sees
G's current output forgets the modes G left behind, so G can hop back to them; mixing in
past fakes keeps them penalised.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from gan_tricks.errors import ConfigError


def _device_of(generator: torch.Generator | None, fallback: torch.device) -> torch.device:
    return generator.device if generator is not None else fallback


class ReplayBuffer:
    """A fixed-size uniform sample of every batch ever pushed (reservoir sampling).

    Reservoir sampling (Vitter 1985, algorithm R) keeps each of the t items pushed so far in
    the buffer with the same probability capacity / t. We prefer it to a FIFO queue because a
    FIFO of 10,000 fakes at batch 256 holds only the last 40 steps, too short a memory to stop
    G from cycling between modes, while the reservoir spans the whole run in fixed memory.
    SimGAN's random replacement of half the buffer sits between the two (exponential decay).

    Storage is allocated on the first ``push`` on that batch's device and dtype.
    """

    def __init__(self, capacity: int) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ConfigError(
                f"the replay buffer capacity must be an integer >= 1 (got {capacity})."
            )
        self.capacity = capacity
        self.seen = 0  # items pushed so far
        self.storage: Tensor | None = None

    def __len__(self) -> int:
        return min(self.seen, self.capacity)

    @torch.no_grad()
    def push(self, batch: Tensor, generator: torch.Generator | None = None) -> None:
        """Offer every row of ``batch`` to the reservoir (stored detached)."""
        batch = batch.detach()
        if self.storage is None:
            self.storage = batch.new_empty((self.capacity, *batch.shape[1:]))
        elif self.storage.shape[1:] != batch.shape[1:]:
            raise ConfigError(
                f"the replay buffer holds samples of shape {tuple(self.storage.shape[1:])} but "
                f"was pushed {tuple(batch.shape[1:])}; use one buffer per sample shape."
            )
        self.storage = self.storage.to(batch.device)
        free = max(0, min(self.capacity - self.seen, len(batch)))
        self.storage[self.seen : self.seen + free] = batch[:free]
        rest = batch[free:]
        if len(rest):
            # Item number t (0-based) replaces slot j ~ U{0..t} when j < capacity. Drawn all at
            # once; where several rows pick one slot the last one wins, as in the sequential
            # algorithm, since each row's draw does not depend on the earlier rows' outcomes.
            numbers = torch.arange(self.seen + free, self.seen + len(batch), dtype=torch.float64)
            device = _device_of(generator, batch.device)
            uniform = torch.rand(len(rest), generator=generator, device=device, dtype=torch.float64)
            slots = (uniform.cpu() * (numbers + 1)).floor().long().clamp_(max=numbers.long())
            kept = slots < self.capacity
            winner = torch.full((self.capacity,), -1, dtype=torch.long)
            rows = torch.arange(len(rest))[kept]
            winner.scatter_reduce_(0, slots[kept], rows, reduce="amax")
            filled = (winner >= 0).nonzero().squeeze(1)
            self.storage[filled.to(batch.device)] = rest[winner[filled].to(batch.device)]
        self.seen += len(batch)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` stored items drawn uniformly, without replacement while the buffer has enough."""
        size = len(self)
        if size == 0 or self.storage is None:
            raise ConfigError("the replay buffer is empty; push a batch before sampling from it.")
        device = _device_of(generator, self.storage.device)
        if n <= size:
            index = torch.randperm(size, generator=generator, device=device)[:n]
        else:
            index = torch.randint(size, (n,), generator=generator, device=device)
        return self.storage[index.to(self.storage.device)]

    def state_dict(self) -> dict[str, Any]:
        """Capacity, items seen and the stored items (a copy, for checkpoints)."""
        stored = None if self.storage is None else self.storage[: len(self)].clone()
        return {"capacity": self.capacity, "seen": self.seen, "storage": stored}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.capacity = int(state_dict["capacity"])
        self.seen = int(state_dict["seen"])
        stored = state_dict["storage"]
        if stored is None:
            self.storage = None
            return
        self.storage = stored.new_empty((self.capacity, *stored.shape[1:]))
        self.storage[: len(stored)] = stored


def replay_mix(
    fake: Tensor,
    buffer: ReplayBuffer,
    share: float = 0.5,
    generator: torch.Generator | None = None,
) -> Tensor:
    """``fake`` with a ``share`` of its rows, at random positions, replaced by buffer items.

    The number of replaced rows is share * N rounded up or down at random so that its mean
    is exactly share * N (no bias for small batches), and at most the buffer's size. Call it
    before pushing ``fake`` so a batch is never mixed with itself. Rows kept from ``fake``
    keep their gradient.
    """
    if not 0.0 <= share <= 1.0:
        raise ConfigError(f"the replay share must be in [0, 1] (got {share}).")
    expected = share * len(fake)
    count = math.floor(expected)
    device = _device_of(generator, fake.device)
    if expected > count and torch.rand((), generator=generator, device=device) < expected - count:
        count += 1
    count = min(count, len(buffer))
    if count == 0:
        return fake
    positions = torch.randperm(len(fake), generator=generator, device=device)[:count]
    old = buffer.sample(count, generator).to(device=fake.device, dtype=fake.dtype)
    return fake.index_put((positions.to(fake.device),), old)
