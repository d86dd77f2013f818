"""What every rank of a distributed run holds at its end, for tests/test_distributed.py."""

from __future__ import annotations

import copy
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch import Tensor

from gan_tricks.engine import unique_names


class RankStateDump(pl.Callback):
    """Each process's state at the end of a fit, in ``folder/rank{r}.pt``: for tests that
    compare the ranks of a distributed run with each other and with a single-process run.

    The file holds G's and D's state dicts (weights and buffers), G's moving average if one is
    kept, what the two networks compute (G's output for 64 fixed codes and D's logits on it, in
    training mode on copies: a bias that BatchNorm cancels drifts on rounding noise alone, so
    the function is the fair thing to compare), the gradients of the first D step and the
    first G step (as the optimizers saw them, after any averaging over ranks), the last
    signals, and the ``state_dict`` of every trick and detector (buffers, alarms, histories)
    under ``"engine"``, keyed by class name.
    Add it to a recipe under ``trainer.callbacks`` (``support.rank_state.RankStateDump`` with
    ``tests/`` on ``PYTHONPATH``); it writes from every rank, on purpose.
    """

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)
        self.first_gradients: list[dict[str, Tensor]] = []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        if len(self.first_gradients) == 2:
            return
        stepping = {id(p) for group in optimizer.param_groups for p in group["params"]}
        self.first_gradients.append(
            {
                name: p.grad.detach().clone()
                for name, p in pl_module.named_parameters()
                if id(p) in stepping and p.grad is not None
            }
        )

    def on_train_end(self, trainer, pl_module) -> None:
        ema = getattr(pl_module, "generator_ema", None)
        codes = pl_module.latent.sample(64, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            fake = copy.deepcopy(pl_module.generator).train()(codes.to(pl_module.device))
            logits = copy.deepcopy(pl_module.discriminator).train()(fake)
        state = {
            "fake": fake.cpu(),
            "logits": logits.cpu(),
            "global_step": trainer.global_step,
            "generator": pl_module.generator.state_dict(),
            "discriminator": pl_module.discriminator.state_dict(),
            "generator_ema": None if ema is None else ema.state_dict(),
            "first_gradients": self.first_gradients,
            "signals": pl_module.signals.floats(),
            "engine": {
                name: obj.state_dict()
                for name, obj in unique_names([*pl_module.tricks, *pl_module.detectors]).items()
            },
        }
        self.folder.mkdir(parents=True, exist_ok=True)
        torch.save(state, self.folder / f"rank{trainer.global_rank}.pt")
