"""Pure functions, no Lightning: a hand-written PyTorch loop calls these and nothing else."""

from gan_tricks.functional.latent import DISTRIBUTIONS, Latent, sample_latent, slerp
from gan_tricks.functional.losses import LOSSES, GANLoss, get_loss

__all__ = ["DISTRIBUTIONS", "LOSSES", "GANLoss", "Latent", "get_loss", "sample_latent", "slerp"]
