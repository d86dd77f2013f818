"""Several networks acting as one: an ensemble of discriminators, a mixture of generators.

Both are the folklore's answers to mode collapse ("use several discriminators", "use several
generators") and both plug into :class:`~gan_tricks.lightning.GANModule` unchanged:

* :class:`DiscriminatorEnsemble` returns one logit column per member, (N, k). GANModule trains
  each column as its own discriminator on its own loss and combines G's k losses by
  ``model.d_reduction`` (``mean``, ``max`` or ``softmax``).
* :class:`GeneratorMixture` sends every latent code to one of k generators, chosen from the code
  itself, so the mixture is one deterministic function of z and seeded sampling stays
  reproducible.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gan_tricks.errors import ConfigError
from gan_tricks.layers.factories import check_choice

ROUTINGS = ("gaussian_cdf", "uniform_cdf", "hash")

__all__ = ["ROUTINGS", "DiscriminatorEnsemble", "GeneratorMixture", "route_latents"]


class DiscriminatorEnsemble(nn.Module):
    """k discriminators side by side: samples -> logits (N, k), column i from member i.

    Every member sees the same batch and returns one logit per sample ((N,) or (N, 1)); a member
    that is itself an ensemble contributes all its columns. Members may differ in width, depth,
    architecture or tricks (e.g. one with minibatch stddev). GANModule trains every column as its
    own D and combines G's losses with ``model.d_reduction``: ``mean`` (as in Neyshabur et al.
    2017, "Stabilizing GAN training with multiple random projections"), ``max`` (GMAN-max: G
    answers its harshest critic) or ``softmax`` (GMAN's soft maximum; Durugkar et al. 2017,
    "Generative multi-adversarial networks").

    In YAML::

        discriminator:
          class_path: gan_tricks.models.ensemble.DiscriminatorEnsemble
          init_args:
            discriminators:
              - {class_path: gan_tricks.models.MLPDiscriminator, init_args: {width: 64}}
              - {class_path: gan_tricks.models.MLPDiscriminator, init_args: {width: 256}}
    """

    def __init__(self, discriminators: list[nn.Module]) -> None:
        super().__init__()
        if not discriminators:
            raise ConfigError(
                "DiscriminatorEnsemble needs at least one discriminator; list them under "
                "discriminators."
            )
        self.members = nn.ModuleList(discriminators)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([_columns(member(x)) for member in self.members], dim=1)


def _columns(logits: Tensor) -> Tensor:
    """Logits as (N, columns): (N,) -> (N, 1); (N, 1) and (N, k) stay; (N, 1, 1, 1) -> (N, 1)."""
    return logits.flatten(1) if logits.dim() > 1 else logits[:, None]


def route_latents(z: Tensor, k: int, routing: str = "gaussian_cdf") -> Tensor:
    """Which of ``k`` generators each code in ``z`` (N, dim) goes to: indices (N,) in [0, k).

    The choice depends on the first coordinate z[:, 0] only, so it is deterministic and each
    member gets about 1/k of the codes provided z[:, 0] is continuous (no atoms):

    * ``gaussian_cdf``: ``floor(k * Phi(z0))`` with Phi the standard normal CDF. Exactly equal
      shares when z0 ~ N(0, 1) (``latent.distribution: gaussian``, and close to it for
      ``spherical`` in high dimension); member i gets a contiguous slab of latent space.
    * ``uniform_cdf``: ``floor(k * (z0 + 1) / 2)``, the same for z0 ~ U(-1, 1)
      (``latent.distribution: uniform``).
    * ``hash``: ``floor(k * frac(1024 * z0))``. Close to equal shares for any smooth density of
      z0, and each member sees codes from the whole latent space (as in MGAN, where the choice
      is independent of z); use it when the distribution of z0 is neither of the above.

    A routing that does not match the latent distribution still works, with unequal shares.
    MGAN (Hoang et al. 2018) draws the index at random instead; a function of z keeps seeded
    sampling reproducible.
    """
    check_choice("routing", routing, ROUTINGS)
    z0 = z[:, 0].float()
    if routing == "gaussian_cdf":
        fraction = torch.special.ndtr(z0)
    elif routing == "uniform_cdf":
        fraction = (z0 + 1) / 2
    else:
        scaled = z0 * 1024
        fraction = scaled - scaled.floor()
    return (fraction * k).floor().long().clamp(0, k - 1)


class GeneratorMixture(nn.Module):
    """k generators as one: each code z goes to one member, chosen from z itself.

    A mixture of generators covers disconnected modes more easily than one continuous network
    (Hoang et al. 2018, "MGAN: training generative adversarial nets with multiple generators";
    Ghosh et al. 2018, "Multi-agent diverse GANs", MAD-GAN). MGAN draws the member index at
    random; here it is a function of z (:func:`route_latents`, on z[:, 0], assuming continuous
    codes), so ``module.sample(n, seed=...)`` is reproducible and G stays a plain function
    z -> x. The batch is split by member, each part runs through its member, and the outputs
    are put back in the order of z. Members must share ``latent_dim`` (exposed as this module's
    ``latent_dim``) and output shape.

    MGAN's classifier head and MAD-GAN's "which generator?" discriminator are not included: this
    is the plain mixture, trained like one generator. Members with BatchNorm need batches large
    enough that every member gets at least two codes.
    """

    def __init__(self, generators: list[nn.Module], routing: str = "gaussian_cdf") -> None:
        super().__init__()
        if not generators:
            raise ConfigError(
                "GeneratorMixture needs at least one generator; list them under generators."
            )
        latent_dims = [getattr(g, "latent_dim", None) for g in generators]
        if None in latent_dims:
            raise ConfigError(
                "every member of GeneratorMixture needs a latent_dim attribute; use the "
                "generators of gan_tricks.models or set latent_dim on yours."
            )
        if len(set(latent_dims)) != 1:
            raise ConfigError(
                f"the generators of GeneratorMixture must share latent_dim (got {latent_dims}); "
                "give them all the same latent_dim."
            )
        self.routing = check_choice("routing", routing, ROUTINGS)
        self.members = nn.ModuleList(generators)
        self.latent_dim = latent_dims[0]

    def route(self, z: Tensor) -> Tensor:
        """The member index of every code, shape (N,)."""
        return route_latents(z.flatten(1), len(self.members), self.routing)

    def forward(self, z: Tensor) -> Tensor:
        index = self.route(z)
        order = torch.argsort(index, stable=True)
        counts = torch.bincount(index, minlength=len(self.members)).tolist()
        parts = [
            member(codes)
            for member, codes in zip(self.members, z[order].split(counts))
            if len(codes)
        ]
        if not parts:  # an empty batch: let a member say what shape an empty output has
            return self.members[0](z)
        return torch.cat(parts)[torch.argsort(order)]
