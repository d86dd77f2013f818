"""Building blocks chosen by short name, so models and recipes never hard-code a layer type."""

from __future__ import annotations

from gan_tricks.layers.blocks import (
    BLOCK_TYPES,
    HIGHWAY_GATE_BIAS,
    SHORTCUTS,
    DiscriminatorBlock,
    GeneratorBlock,
    ZeroPadChannels,
)
from gan_tricks.layers.factories import (
    ACTIVATIONS,
    DOWNSAMPLES,
    INITS,
    NORMS,
    UPSAMPLES,
    check_at_least,
    check_choice,
    init_weights,
    make_activation,
    make_downsample,
    make_norm,
    make_upsample,
)
from gan_tricks.layers.minibatch import (
    MinibatchDiscrimination,
    MinibatchStdDev,
    minibatch_group_size,
)
from gan_tricks.layers.noise import NoiseInjection

__all__ = [
    "ACTIVATIONS",
    "BLOCK_TYPES",
    "DOWNSAMPLES",
    "HIGHWAY_GATE_BIAS",
    "INITS",
    "NORMS",
    "SHORTCUTS",
    "UPSAMPLES",
    "DiscriminatorBlock",
    "GeneratorBlock",
    "MinibatchDiscrimination",
    "MinibatchStdDev",
    "NoiseInjection",
    "ZeroPadChannels",
    "check_at_least",
    "check_choice",
    "init_weights",
    "make_activation",
    "make_downsample",
    "make_norm",
    "make_upsample",
    "minibatch_group_size",
]
