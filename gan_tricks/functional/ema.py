"""An exponential moving average of G's weights, to sample from instead of G itself.

Yazıcı et al. 2019, "The unusual effectiveness of averaging in GAN training"; Karras et al.
2018 (ProGAN) and 2019 (StyleGAN) sample from such an average. G's iterates orbit around an
equilibrium rather than converge to it; their average sits closer to it, and averaging costs
nothing at training time.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import get_ema_multi_avg_fn

from gan_tricks.errors import ConfigError


def ema_decay_with_rampup(step: int, decay: float, rampup: float | None = 10.0) -> float:
    """The decay of update number ``step`` (0-based): min(decay, (1 + step) / (rampup + step)).

    Early on the average follows G closely, so the random initial weights do not linger in it:
    with a fixed decay of 0.999 they still weigh 0.999^1000 = 37% after 1,000 updates. The
    schedule is TensorFlow's ``ExponentialMovingAverage(num_updates=...)`` with rampup = 10;
    ``rampup=None`` keeps ``decay`` throughout.
    """
    if rampup is None:
        return decay
    return min(decay, (1.0 + step) / (rampup + step))


@torch.no_grad()
def ema_update(ema_model: nn.Module, model: nn.Module, decay: float) -> None:
    """ema_p <- decay * ema_p + (1 - decay) * p for every parameter; buffers are copied.

    ``ema_model`` is a copy of ``model`` (``copy.deepcopy``). Copying the buffers makes
    BatchNorm's running statistics follow the current G (as StyleGAN does) rather than
    averaging statistics of networks that no longer exist. ``decay = 0`` copies ``model``.
    """
    if not 0.0 <= decay <= 1.0:
        raise ConfigError(f"the EMA decay must be in [0, 1] (got {decay}).")
    ema_named = list(ema_model.named_parameters())
    named = list(model.named_parameters())
    if [name for name, _ in ema_named] != [name for name, _ in named]:
        raise ConfigError(
            "the moving average and the model have different parameters; rebuild the average "
            "with copy.deepcopy(model) after every change to the model's structure."
        )
    ema_params = [p for _, p in ema_named if p.is_floating_point()]
    params = [p.detach() for _, p in named if p.is_floating_point()]
    if decay == 0.0:
        for ema_param, param in zip(ema_params, params):
            ema_param.copy_(param)
    elif ema_params:
        # torch's public EMA update: one fused lerp over all parameters,
        # lerp_(end, w) = self + w * (end - self) = decay * self + (1 - decay) * end.
        get_ema_multi_avg_fn(decay)(ema_params, params, None)
    for ema_buffer, buffer in zip(ema_model.buffers(), model.buffers()):
        ema_buffer.copy_(buffer)
