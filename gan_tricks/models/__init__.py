"""Generators and discriminators whose every layer is chosen by name from a recipe."""

from __future__ import annotations

from gan_tricks.models.dcgan import DCGANDiscriminator, DCGANGenerator
from gan_tricks.models.ensemble import DiscriminatorEnsemble, GeneratorMixture
from gan_tricks.models.mlp import MLPDiscriminator, MLPGenerator
from gan_tricks.models.resnet import ResNetDiscriminator, ResNetGenerator

__all__ = [
    "DCGANDiscriminator",
    "DCGANGenerator",
    "DiscriminatorEnsemble",
    "GeneratorMixture",
    "MLPDiscriminator",
    "MLPGenerator",
    "ResNetDiscriminator",
    "ResNetGenerator",
]
