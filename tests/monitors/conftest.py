"""A tiny GANEngine without Lightning, for the detectors' tests in a loop of one's own."""

from collections.abc import Callable, Sequence

import pytest
import torch

from gan_tricks.engine import GANEngine
from gan_tricks.functional.latent import Latent
from gan_tricks.models.mlp import MLPDiscriminator, MLPGenerator


def build_engine(detectors: Sequence = (), lr: float = 2e-4, seed: int = 0, **options) -> GANEngine:
    """G and D as ``tiny_gan_module`` builds them (2D points, tiny MLPs), Adam for both."""
    torch.manual_seed(seed)
    generator = MLPGenerator(latent_dim=2, out_dim=2, width=16, depth=2)
    discriminator = MLPDiscriminator(in_dim=2, width=16, depth=2)
    return GANEngine(
        generator,
        discriminator,
        lambda p: torch.optim.Adam(p, lr=lr, betas=(0.5, 0.999)),
        lambda p: torch.optim.Adam(p, lr=lr, betas=(0.5, 0.999)),
        latent=Latent(dim=2),
        detectors=list(detectors),
        **options,
    )


@pytest.fixture
def tiny_engine() -> Callable[..., GANEngine]:
    """``tiny_engine(detectors=[...], lr=..., **GANEngine options)``."""
    return build_engine


def assert_one_sentence(message: str) -> None:
    assert message.endswith(".") and ". " not in message, message


@pytest.fixture
def one_sentence() -> Callable[[str], None]:
    return assert_one_sentence
