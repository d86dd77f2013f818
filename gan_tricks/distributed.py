"""What a GAN step needs from ``torch.distributed`` under Lightning's DDP strategies.

Lightning launches the processes and wraps the module in ``DistributedDataParallel`` (DDP);
this module holds the few GAN-specific pieces DDP cannot give:

* **One gradient reduction per network step.** DDP reduces gradients once per forward, for
  every parameter it wraps. A GAN iteration is several backward passes (D steps, then a G
  step), each of which leaves the other network's parameters without gradients, which plain
  DDP reports as unused parameters (or, with ``find_unused_parameters=True``, searches the
  graph for on every step). So :class:`~gan_tricks.GANModule` switches DDP's own reduction off
  and calls :func:`average_gradients` after each backward, on exactly the parameters the step
  will update: one all-reduce per step, of one flat buffer, which also carries the step's
  signals (losses, D's mean outputs), so every rank sees the global values and every trick or
  detector that reads them decides the same way.
* **Buffers that agree.** BatchNorm's running statistics are averaged across ranks after each
  iteration; ``--trainer.sync_batchnorm true`` normalises over the global batch instead
  (torch's ``SyncBatchNorm`` on GPUs, :class:`CrossRankBatchNorm2d` elsewhere: torch's needs
  CUDA). Spectral norm's power-iteration vectors are identical by construction (same weights,
  same start) and averaging keeps them so.
* **Random numbers that shard like the data.** Every rank draws the whole global batch of latent
  codes from one shared generator and keeps its own slice, so N processes of batch B see the
  codes one process of batch N*B would; the global generators are re-seeded per rank, so that
  tricks' noise is independent across ranks rather than N copies of the same draw.

Everything here is a no-op in a single process.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterable

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn

# The environment variables a launcher sets to a process's rank: Lightning's own launcher
# (LOCAL_RANK, NODE_RANK), torchrun (RANK) and SLURM (SLURM_PROCID).
RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID")


def world() -> tuple[int, int]:
    """``(rank, world_size)`` of this process; ``(0, 1)`` outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_launched_rank_zero() -> bool:
    """Whether this process is (or will become) global rank 0, read from the launcher's
    environment before any process group exists: the one process that creates and checks the
    run folder. Lightning re-runs the command line in its child processes, and torchrun or
    SLURM start every process with it."""
    return all(os.environ.get(name, "0") == "0" for name in RANK_VARIABLES)


def average_gradients(
    parameters: Iterable[nn.Parameter], values: dict[str, Tensor] | None = None
) -> dict[str, Tensor]:
    """Average the gradients of ``parameters`` and the scalar ``values`` over all ranks.

    One all-reduce of one flat buffer. A parameter without a gradient on this rank counts as a
    zero gradient (another rank may have one: a generator in a mixture that drew no codes
    here), so every rank sends a buffer of the same size. Returns ``values`` averaged; in a
    single process, returns them unchanged and touches nothing.
    """
    values = values or {}
    _, size = world()
    if size == 1:
        return values
    params = [p for p in parameters if p.requires_grad]
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    names = sorted(values)
    tensors = [p.grad for p in params] + [values[name].detach().float() for name in names]
    averaged = _all_reduce_mean(tensors)
    for p, grad in zip(params, averaged[: len(params)]):
        p.grad.copy_(grad)
    return {name: value for name, value in zip(names, averaged[len(params) :])}


def average_buffers(modules: Iterable[nn.Module]) -> None:
    """Average the floating-point buffers of ``modules`` (BatchNorm's running statistics,
    spectral norm's vectors) over all ranks, in place; integer counters are left alone."""
    _, size = world()
    if size == 1:
        return
    buffers = [b for m in modules for b in m.buffers() if b.is_floating_point()]
    if not buffers:
        return
    for buffer, averaged in zip(buffers, _all_reduce_mean(buffers)):
        buffer.copy_(averaged)


def average_values(values: dict[str, float]) -> dict[str, float]:
    """Plain floats averaged over all ranks (a detector's own measurements)."""
    _, size = world()
    if size == 1 or not values:
        return values
    names = sorted(values)
    averaged = _all_reduce_mean([torch.tensor([float(values[name]) for name in names])])[0]
    return {name: float(value) for name, value in zip(names, averaged)}


def average_tensors(*tensors: Tensor) -> list[Tensor]:
    """Detached copies of ``tensors`` averaged over all ranks (one all-reduce for all)."""
    _, size = world()
    detached = [t.detach() for t in tensors]
    if size == 1:
        return detached
    return _all_reduce_mean(detached)


def rank_slice(batch: Tensor) -> Tensor:
    """This rank's share of a tensor drawn for the global batch: rows ``[r*n, (r+1)*n)`` of
    ``batch`` (N = world size * n rows)."""
    rank, size = world()
    if size == 1:
        return batch
    share = len(batch) // size
    return batch[rank * share : (rank + 1) * share]


def seed_ranks_apart() -> None:
    """Give each rank its own stream of the global random generators (Python, NumPy, torch).

    Lightning seeds every rank alike, so without this each rank's instance noise, label flips
    and augmentations would repeat the other ranks' draws on different images. The new seed is
    a function of the run's seed and the rank (NumPy's SeedSequence mixes the pair), so a run
    stays reproducible. No-op in a single process.
    """
    rank, size = world()
    if size == 1:
        return
    seed = int(np.random.SeedSequence([torch.initial_seed(), rank]).generate_state(1)[0])
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def broadcast_int(value: int) -> int:
    """Rank 0's ``value`` on every rank."""
    _, size = world()
    if size == 1:
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return int(holder[0])


def gather_objects(value: object) -> list[object]:
    """Every rank's ``value``, in rank order (on every rank)."""
    _, size = world()
    if size == 1:
        return [value]
    gathered: list[object] = [None] * size
    dist.all_gather_object(gathered, value)
    return gathered


def _all_reduce_mean(tensors: list[Tensor]) -> list[Tensor]:
    """The mean over ranks of each tensor, through one all-reduce of one flat buffer."""
    _, size = world()
    flat = torch.cat([t.reshape(-1).to(torch.float32) for t in tensors])
    dist.all_reduce(flat)
    flat /= size
    out, start = [], 0
    for t in tensors:
        out.append(flat[start : start + t.numel()].view(t.shape).to(t.dtype))
        start += t.numel()
    return out


class _SumOverRanks(torch.autograd.Function):
    """The sum of a tensor over all ranks, differentiable: the gradient of a sum is the sum of
    the gradients (applied again in backward, so a gradient penalty can differentiate twice)."""

    @staticmethod
    def forward(ctx, tensor: Tensor) -> Tensor:
        total = tensor.clone()
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        return _SumOverRanks.apply(grad)


class CrossRankBatchNormMixin:
    """Training-mode batch statistics over the global batch of every rank.

    Torch's ``SyncBatchNorm`` runs on CUDA only; this runs on any device and backend (gloo on
    CPU too), at the cost of one small all-reduce per layer per forward. The all-reduce carries
    gradients (``torch.distributed.nn``), so the backward pass is that of BatchNorm over the
    global batch. In eval mode, or in one process, it is plain BatchNorm.
    """

    def forward(self, x: Tensor) -> Tensor:
        _, size = world()
        if not self.training or size == 1:
            return super().forward(x)  # type: ignore[misc]
        dims = [0, *range(2, x.dim())]
        channels = x.shape[1]
        local = torch.cat([x.sum(dims), (x * x).sum(dims), x.new_full((1,), x.numel() / channels)])
        total = _SumOverRanks.apply(local)
        count = total[-1]
        mean = total[:channels] / count
        var = (total[channels : 2 * channels] / count - mean * mean).clamp_min(0)
        if self.track_running_stats:  # type: ignore[attr-defined]
            self._update_running_stats(mean.detach(), var.detach(), count.item())
        shape = [1, channels] + [1] * (x.dim() - 2)
        y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)  # type: ignore[attr-defined]
        if self.affine:  # type: ignore[attr-defined]
            y = y * self.weight.view(shape) + self.bias.view(shape)  # type: ignore[attr-defined]
        return y

    @torch.no_grad()
    def _update_running_stats(self, mean: Tensor, var: Tensor, count: float) -> None:
        self.num_batches_tracked += 1  # type: ignore[attr-defined]
        momentum = self.momentum  # type: ignore[attr-defined]
        if momentum is None:  # a cumulative average, as BatchNorm does
            momentum = 1.0 / float(self.num_batches_tracked)  # type: ignore[attr-defined]
        unbiased = var * count / max(count - 1, 1)
        self.running_mean.lerp_(mean, momentum)  # type: ignore[attr-defined]
        self.running_var.lerp_(unbiased, momentum)  # type: ignore[attr-defined]


class CrossRankBatchNorm1d(CrossRankBatchNormMixin, nn.BatchNorm1d):
    """``nn.BatchNorm1d`` with global batch statistics under DDP (see the mixin)."""


class CrossRankBatchNorm2d(CrossRankBatchNormMixin, nn.BatchNorm2d):
    """``nn.BatchNorm2d`` with global batch statistics under DDP (see the mixin)."""


CROSS_RANK_BATCHNORM = {nn.BatchNorm1d: CrossRankBatchNorm1d, nn.BatchNorm2d: CrossRankBatchNorm2d}


def swap_batchnorm(module: nn.Module, mapping: dict[type, type]) -> nn.Module:
    """``module`` with every BatchNorm whose exact class is in ``mapping`` rebuilt as the mapped
    class, sharing its parameters and buffers (optimizers are not built yet when this runs)."""
    target = mapping.get(type(module))
    converted = module
    if target is not None:
        converted = target(
            module.num_features,
            module.eps,
            module.momentum,
            module.affine,
            module.track_running_stats,
        )
        converted.weight, converted.bias = module.weight, module.bias
        converted.running_mean = module.running_mean
        converted.running_var = module.running_var
        converted.num_batches_tracked = module.num_batches_tracked
        converted.train(module.training)
    for name, child in module.named_children():
        converted.add_module(name, swap_batchnorm(child, mapping))
    return converted
