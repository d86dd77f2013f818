"""Keep a non-finite gradient away from the weights: skip the optimizer step it would poison.

One NaN in a loss spreads to every gradient, the optimizer writes it into every weight and
Adam's moments, and the run is lost for good. AMP's gradient scaler skips a step whose
gradients overflowed (Micikevicius et al. 2018, "Mixed Precision Training"); the same guard
helps any run: skip that one step and go on, or stop with healthy weights.
"""

from __future__ import annotations

import torch

__all__ = ["drop_nonfinite_gradients"]


def drop_nonfinite_gradients(optimizer: torch.optim.Optimizer) -> bool:
    """If any gradient of ``optimizer``'s parameters holds a NaN or an Inf, drop them all
    (``grad = None``) and return True; else change nothing and return False.

    Call it between ``backward()`` and ``optimizer.step()``: PyTorch's optimizers leave a
    parameter without a gradient untouched (its Adam moments and step count too), so the step
    becomes a no-op. One fused norm over all gradients, a single device sync::

        loss.backward()
        if drop_nonfinite_gradients(opt_d):
            print("skipped a non-finite D step")
        opt_d.step()
    """
    grads = [p.grad for group in optimizer.param_groups for p in group["params"]]
    grads = [grad for grad in grads if grad is not None]
    # The norm of a set of tensors holding a NaN or an Inf is itself NaN or Inf.
    if not grads or bool(torch.isfinite(torch.nn.utils.get_total_norm(grads))):
        return False
    for group in optimizer.param_groups:
        for parameter in group["params"]:
            parameter.grad = None
    return True
