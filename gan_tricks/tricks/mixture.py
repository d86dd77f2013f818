"""MGAN's classifier: the members of a mixture of generators must make different samples."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_tricks.engine.context import NetworkHolder, StepContext
from gan_tricks.errors import ConfigError
from gan_tricks.functional.latent import latent_categories
from gan_tricks.models.ensemble import GeneratorMixture
from gan_tricks.models.mlp import hidden_layers
from gan_tricks.tricks.base import Trick


def build_mixture_classifier(
    in_features: int, members: int, width: int = 128, depth: int = 2
) -> nn.Sequential:
    """An MLP from flattened samples to ``members`` logits (``depth`` hidden layers)."""
    return nn.Sequential(
        nn.Flatten(),
        *hidden_layers(in_features, width, depth, norm="none", activation="leaky_relu"),
        nn.Linear(width, members),
    )


class MixtureClassifier(Trick):
    """A classifier C learns which member of a mixture of generators made each fake, and G is
    trained to make that easy: G's loss gains ``weight * CE(C(G(z)), member(z))`` (MGAN, Hoang
    et al. 2018, "MGAN: training generative adversarial nets with multiple generators"; the
    categorical code of InfoGAN, Chen et al. 2016, is the same term).

    Without it the members of a mixture may all settle on the same modes; with it they must
    make distinguishable samples, while D makes each of them realistic, so the members spread
    over the modes. The mixture is either a latent with ``categories`` K (``latent:
    {categories: 25}``: one network whose first layer sees a one-hot member code, MGAN's
    parameter sharing) or a ``GeneratorMixture`` (the member is its routing of z). With
    several categorical codes (``latent: {categories: 10, codes: 3}``), C reads each code out
    of the sample, K logits per code, and the term is the mean of the codes' cross-entropies
    (InfoGAN's sum of mutual-information terms, averaged).

    C is an MLP on flattened samples, ``networks.mixture_classifier`` (in the networks' state
    dict, so checkpoints carry it), trained by its own Adam on the same term after every G
    step. The term is logged as ``g_penalty/MixtureClassifier``; at chance it is log K.

    Args:
        weight: beta of MGAN, the term's weight in G's loss (0.1 on grid25).
        width: the width of C's hidden layers.
        depth: the number of C's hidden layers.
        lr: C's Adam learning rate (betas 0.5, 0.999).
        fade: scale the weight by G's learning-rate factor (its rate now over its initial
            rate), so that under a decaying schedule the term fades faster than D's. C knows a
            member best by the samples only it makes, stray ones between modes included, so late
            in training its pull keeps them there; fading it leaves D to pull them onto a mode.
    """

    def __init__(
        self,
        weight: float = 0.1,
        width: int = 128,
        depth: int = 2,
        lr: float = 5e-4,
        fade: bool = False,
    ):
        if not weight > 0:
            raise ConfigError(f"MixtureClassifier weight must be > 0 (got {weight}).")
        if width < 1 or depth < 1:
            raise ConfigError(
                f"MixtureClassifier needs width >= 1 and depth >= 1 (got {width}, {depth})."
            )
        if not lr > 0:
            raise ConfigError(f"MixtureClassifier lr must be > 0 (got {lr}).")
        self.weight = weight
        self.width = width
        self.depth = depth
        self.lr = lr
        self.fade = fade
        self._optimizer: torch.optim.Optimizer | None = None
        self._pending_optimizer_state: dict[str, Any] | None = None

    @staticmethod
    def members(ctx: StepContext) -> int:
        """How many generators the run's mixture has (0: it is not a mixture)."""
        if ctx.latent.categories:
            return ctx.latent.categories
        if isinstance(ctx.generator, GeneratorMixture):
            return len(ctx.generator.members)
        return 0

    @staticmethod
    def codes(ctx: StepContext) -> int:
        """How many categorical codes C name a member (``latent.codes``; 1 for a mixture)."""
        return ctx.latent.codes if ctx.latent.categories else 1

    @staticmethod
    def member_of(ctx: StepContext, z: Tensor) -> Tensor:
        """The member (N,) that made the sample of each code in ``z``; (N, C) for C codes."""
        if ctx.latent.categories:
            return latent_categories(z, ctx.latent.categories, ctx.latent.codes)
        return ctx.generator.route(z)

    def configure_networks(self, networks: NetworkHolder, ctx: StepContext | None = None) -> None:
        if ctx is None:
            raise ConfigError(
                "MixtureClassifier.configure_networks needs the step context (the latent's "
                "categories); let a GANEngine call it."
            )
        members = self.members(ctx)
        if members < 2:
            raise ConfigError(
                "MixtureClassifier needs a mixture of generators: set latent.categories (>= 2) "
                "or use a GeneratorMixture."
            )
        if isinstance(getattr(networks, "mixture_classifier", None), nn.Module):
            return
        generator = networks.generator
        device = next(generator.parameters()).device
        with torch.no_grad():
            was_training = generator.training
            generator.eval()
            sample = generator(ctx.latent.sample(2, device=device))
            generator.train(was_training)
        in_features = math.prod(sample.shape[1:])
        outputs = members * self.codes(ctx)
        classifier = build_mixture_classifier(in_features, outputs, self.width, self.depth)
        networks.add_module("mixture_classifier", classifier.to(sample.device))

    def g_penalty(self, ctx: StepContext) -> Tensor:
        # C reads G's raw samples: ``ctx.fake`` may be packed or augmented by other tricks.
        logits = ctx.networks.mixture_classifier(ctx.g_output)
        members = self.member_of(ctx, ctx.z)
        if members.dim() == 2:  # several codes: one K-way read-out each, their mean CE
            logits = logits.reshape(len(logits), members.shape[1], -1).transpose(1, 2)
        loss = F.cross_entropy(logits, members)
        return self.current_weight(ctx) * loss

    def current_weight(self, ctx: StepContext) -> float:
        """``weight``, times G's learning-rate factor when ``fade`` is on."""
        if not self.fade:
            return self.weight
        group = ctx.g_optimizer.param_groups[0]
        return self.weight * group["lr"] / group.get("initial_lr", group["lr"])

    def after_g_step(self, ctx: StepContext) -> None:
        # The G step's backward left C's gradients of the same term: C descends it too.
        optimizer = self._classifier_optimizer(ctx)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def _classifier_optimizer(self, ctx: StepContext) -> torch.optim.Optimizer:
        if self._optimizer is None:
            params = ctx.networks.mixture_classifier.parameters()
            self._optimizer = torch.optim.Adam(params, lr=self.lr, betas=(0.5, 0.999))
            if self._pending_optimizer_state is not None:
                self._optimizer.load_state_dict(self._pending_optimizer_state)
                self._pending_optimizer_state = None
        return self._optimizer

    def state_dict(self) -> dict[str, Any]:
        if self._optimizer is not None:
            return {"optimizer": self._optimizer.state_dict()}
        return {"optimizer": self._pending_optimizer_state}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._optimizer = None
        self._pending_optimizer_state = state_dict.get("optimizer")
