"""SNGAN-style residual blocks (Miyato et al. 2018) with a switchable skip connection.

Two choices make the blocks useful for ablations:

* ``block_type`` says how the main path H and the skip path S are combined:

  - ``residual``: ``y = H(x) + S(x)`` (ResNet, He et al. 2016);
  - ``highway``: ``y = H(x) * T(x) + S(x) * (1 - T(x))`` with a learned gate
    ``T = sigmoid(1x1 conv of x)`` (Highway networks, Srivastava et al. 2015). The gate's bias
    starts at -2 so each block starts close to the carry path, which is what lets very deep
    highway networks train;
  - ``plain``: ``y = H(x)``, no skip at all, the baseline that shows why skips matter.

* ``shortcut`` says what S does when the block changes the number of channels, following the
  three options of He et al. 2016:

  - ``zero_pad`` (option A): parameter-free identity; extra output channels are zeros. When the
    width shrinks, the first ``out_channels`` input channels are kept and the rest dropped;
  - ``project_when_needed`` (option B): a 1x1 conv only where in != out, identity otherwise;
  - ``project_always`` (option C): a 1x1 conv on every block.

S is resampled like H (nearest x2 in the generator, 2x2 average pooling in the discriminator).
"""

from __future__ import annotations

import torch
from torch import nn

from gan_tricks.layers.factories import check_choice, make_activation, make_norm

BLOCK_TYPES = ("residual", "highway", "plain")
SHORTCUTS = ("zero_pad", "project_when_needed", "project_always")

# Negative so sigmoid(bias) ~ 0.12: a fresh highway block mostly carries its input through.
HIGHWAY_GATE_BIAS = -2.0

__all__ = [
    "BLOCK_TYPES",
    "HIGHWAY_GATE_BIAS",
    "SHORTCUTS",
    "DiscriminatorBlock",
    "GeneratorBlock",
    "ZeroPadChannels",
]


class ZeroPadChannels(nn.Module):
    """ResNet option A shortcut (He et al. 2016): change the channel count without parameters.

    Growing appends zero channels; shrinking keeps the first ``out_channels`` channels.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        missing = self.out_channels - self.in_channels
        if missing > 0:
            zeros = x.new_zeros(x.shape[0], missing, *x.shape[2:])
            return torch.cat([x, zeros], dim=1)
        return x[:, : self.out_channels]

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}"


def _channel_map(shortcut: str, in_channels: int, out_channels: int) -> nn.Module:
    """The channel-changing part of the skip path S, before or after resampling."""
    if shortcut == "project_always" or (
        shortcut == "project_when_needed" and in_channels != out_channels
    ):
        return nn.Conv2d(in_channels, out_channels, kernel_size=1)
    if in_channels != out_channels:
        return ZeroPadChannels(in_channels, out_channels)
    return nn.Identity()


def _highway_gate(in_channels: int, out_channels: int) -> nn.Conv2d:
    gate = nn.Conv2d(in_channels, out_channels, kernel_size=1)
    nn.init.constant_(gate.bias, HIGHWAY_GATE_BIAS)
    # init_weights() honours this, so model-level re-initialization keeps the carry bias.
    gate.initial_bias = HIGHWAY_GATE_BIAS
    return gate


class _SkipBlock(nn.Module):
    """Combines the main path, the skip path and the optional highway gate."""

    main: nn.Sequential
    skip: nn.Module | None
    gate: nn.Module | None

    def __init__(self, block_type: str, shortcut: str) -> None:
        super().__init__()
        self.block_type = check_choice("block_type", block_type, BLOCK_TYPES)
        self.shortcut = check_choice("shortcut", shortcut, SHORTCUTS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.main(x)
        if self.skip is None:
            return h
        s = self.skip(x)
        if self.gate is None:
            return h + s
        t = torch.sigmoid(self.gate(x))
        return h * t + s * (1.0 - t)


class GeneratorBlock(_SkipBlock):
    """SNGAN generator block: ``norm -> act -> (up x2) -> conv3x3 -> norm -> act -> conv3x3``.

    The pre-activation ordering and nearest-neighbour upsampling follow the SNGAN CIFAR generator
    (Miyato et al. 2018). See the module docstring for ``block_type`` and ``shortcut``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        norm: str = "batch",
        activation: str = "relu",
        upsample: bool = True,
        block_type: str = "residual",
        shortcut: str = "project_when_needed",
    ) -> None:
        super().__init__(block_type, shortcut)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.upsample = upsample

        def resample() -> nn.Module:
            return nn.Upsample(scale_factor=2, mode="nearest") if upsample else nn.Identity()

        self.main = nn.Sequential(
            make_norm(norm, in_channels),
            make_activation(activation),
            resample(),
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
            make_norm(norm, out_channels),
            make_activation(activation),
            nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1),
        )
        # Channel map before upsampling: identical result (both are per-pixel linear maps that
        # commute with nearest upsampling) at a quarter of the cost.
        self.skip = (
            None
            if block_type == "plain"
            else nn.Sequential(_channel_map(shortcut, in_channels, out_channels), resample())
        )
        self.gate = (
            nn.Sequential(_highway_gate(in_channels, out_channels), resample())
            if block_type == "highway"
            else None
        )


class DiscriminatorBlock(_SkipBlock):
    """SNGAN discriminator block: ``act -> conv3x3 -> act -> conv3x3 -> (avgpool 2)``.

    With ``first=True`` this is SNGAN's "optimized" first block (Miyato et al. 2018): no
    activation (and no norm) before the first conv, because the input is the image itself.
    ``norm`` defaults to ``none`` as in SNGAN, where spectral norm does the job; when set, a norm
    goes before each activation (pre-activation ordering, as in the generator).
    See the module docstring for ``block_type`` and ``shortcut``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        norm: str = "none",
        activation: str = "relu",
        downsample: bool = True,
        block_type: str = "residual",
        shortcut: str = "project_when_needed",
        first: bool = False,
    ) -> None:
        super().__init__(block_type, shortcut)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.downsample = downsample
        self.first = first

        def resample() -> nn.Module:
            return nn.AvgPool2d(2) if downsample else nn.Identity()

        pre_activation = (
            [] if first else [make_norm(norm, in_channels), make_activation(activation)]
        )
        self.main = nn.Sequential(
            *pre_activation,
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
            make_norm(norm, out_channels),
            make_activation(activation),
            nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1),
            resample(),
        )
        # Pooling before the channel map: identical result (both linear and per-pixel vs.
        # per-channel) at a quarter of the cost of the 1x1 conv.
        self.skip = (
            None
            if block_type == "plain"
            else nn.Sequential(resample(), _channel_map(shortcut, in_channels, out_channels))
        )
        self.gate = (
            nn.Sequential(resample(), _highway_gate(in_channels, out_channels))
            if block_type == "highway"
            else None
        )
