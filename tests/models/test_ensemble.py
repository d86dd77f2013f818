from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from gan_tricks.errors import ConfigError
from gan_tricks.functional.latent import Latent
from gan_tricks.lightning import GANModule
from gan_tricks.models import MLPDiscriminator, MLPGenerator
from gan_tricks.models.ensemble import (
    DiscriminatorEnsemble,
    GeneratorMixture,
    route_latents,
)
from gan_tricks.testing import fit_briefly


class Constant(nn.Module):
    """A generator that ignores z and outputs ``value`` (with a gradient path through ``bias``)."""

    def __init__(self, value: float, latent_dim: int = 3) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.bias = nn.Parameter(torch.tensor(float(value)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.bias.expand(len(z), 2) + 0 * z[:, :1]


def test_ensemble_column_i_is_member_i():
    torch.manual_seed(0)
    members = [MLPDiscriminator(width=w, depth=d) for w, d in [(8, 1), (16, 2), (4, 3)]]
    ensemble = DiscriminatorEnsemble(members)
    x = torch.randn(5, 2)
    logits = ensemble(x)
    assert logits.shape == (5, 3)
    for i, member in enumerate(members):
        torch.testing.assert_close(logits[:, i], member(x))


def test_ensemble_accepts_column_logits_and_nested_ensembles():
    torch.manual_seed(0)
    first, second, third = (MLPDiscriminator(width=4, depth=1) for _ in range(3))
    column = nn.Sequential(first, nn.Unflatten(0, (-1, 1)))  # returns (N, 1)
    ensemble = DiscriminatorEnsemble([column, DiscriminatorEnsemble([second, third])])
    x = torch.randn(4, 2)
    torch.testing.assert_close(ensemble(x), torch.stack([first(x), second(x), third(x)], dim=1))


def test_empty_ensemble_and_mixture_raise():
    with pytest.raises(ConfigError, match="at least one discriminator"):
        DiscriminatorEnsemble([])
    with pytest.raises(ConfigError, match="at least one generator"):
        GeneratorMixture([])


def test_mixture_routes_each_code_to_exactly_one_member():
    values = [10.0, 20.0, 30.0, 40.0]
    mixture = GeneratorMixture([Constant(v) for v in values])
    assert mixture.latent_dim == 3
    z = torch.randn(1000, 3, generator=torch.Generator().manual_seed(0))
    out = mixture(z)
    assert out.shape == (1000, 2)
    index = mixture.route(z)
    # Sample n comes from the member route() names for it, in z's order.
    torch.testing.assert_close(out[:, 0], torch.tensor(values)[index])
    torch.testing.assert_close(mixture(z[:7]), out[:7])  # a code's member ignores the batch


@pytest.mark.parametrize(
    ("routing", "draw"),
    [
        ("gaussian_cdf", lambda n, g: torch.randn(n, 2, generator=g)),
        ("uniform_cdf", lambda n, g: torch.rand(n, 2, generator=g) * 2 - 1),
        ("hash", lambda n, g: torch.rand(n, 2, generator=g) * 3),
        ("hash", lambda n, g: torch.randn(n, 2, generator=g)),
    ],
)
def test_each_member_gets_about_one_kth_of_the_codes(routing, draw):
    k, n = 5, 20000
    index = route_latents(draw(n, torch.Generator().manual_seed(1)), k, routing)
    shares = torch.bincount(index, minlength=k).float() / n
    # Binomial std of a share: sqrt(0.2 * 0.8 / 20000) = 0.0028; allow ~4 std.
    torch.testing.assert_close(shares, torch.full((k,), 1 / k), atol=0.012, rtol=0)


def test_gaussian_cdf_routing_gives_contiguous_slabs():
    z0 = torch.tensor([-3.0, -0.9, -0.1, 0.1, 0.9, 3.0])  # Phi: .001 .18 .46 .54 .82 .999
    index = route_latents(torch.stack([z0, torch.zeros(6)], dim=1), 4)
    assert index.tolist() == [0, 0, 1, 2, 3, 3]


def test_mixture_of_mlps_is_reproducible_and_differentiable():
    torch.manual_seed(0)
    mixture = GeneratorMixture([MLPGenerator(latent_dim=2, width=8, depth=1) for _ in range(3)])
    z = torch.randn(64, 2)
    out = mixture(z)
    torch.testing.assert_close(mixture(z), out)
    out.square().sum().backward()
    for member in mixture.members:
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in member.parameters())
    assert mixture(z[:0]).shape == (0, 2)


def test_mixture_rejects_mismatched_latent_dims_and_bad_routing():
    with pytest.raises(ConfigError, match="share latent_dim"):
        GeneratorMixture([MLPGenerator(latent_dim=2), MLPGenerator(latent_dim=3)])
    with pytest.raises(ConfigError, match="latent_dim attribute"):
        GeneratorMixture([nn.Linear(2, 2)])
    with pytest.raises(ConfigError, match="^routing must"):
        GeneratorMixture([MLPGenerator()], routing="random")


def test_tiny_fit_with_max_reduction_trains_every_discriminator():
    torch.manual_seed(0)
    ensemble = DiscriminatorEnsemble([MLPDiscriminator(width=w, depth=2) for w in (8, 16, 32)])
    module = GANModule(
        generator=MLPGenerator(latent_dim=2, width=16, depth=2),
        discriminator=ensemble,
        latent=Latent(dim=2),
        d_reduction="max",
    )
    before = copy.deepcopy(ensemble.state_dict())
    fit_briefly(module, 3, batch_size=32, batches=4)
    for i, member in enumerate(ensemble.members):
        for name, value in member.state_dict().items():
            assert not torch.equal(value, before[f"members.{i}.{name}"]), (i, name)
    assert torch.isfinite(torch.as_tensor(module.signals.g_loss))


def test_tiny_fit_trains_every_generator_of_a_mixture():
    torch.manual_seed(0)
    mixture = GeneratorMixture([MLPGenerator(latent_dim=2, width=8, depth=1) for _ in range(3)])
    module = GANModule(
        generator=mixture,
        discriminator=DiscriminatorEnsemble([MLPDiscriminator(width=8, depth=1)]),
        latent=Latent(dim=2),
        d_reduction="softmax",
    )
    before = copy.deepcopy(mixture.state_dict())
    fit_briefly(module, 2, batch_size=32, batches=4)
    for name, value in mixture.state_dict().items():
        assert not torch.equal(value, before[name]), name
    torch.testing.assert_close(module.sample(10, seed=3), module.sample(10, seed=3))


@pytest.mark.parametrize(
    ("recipe", "network", "count"),
    [("several_discriminators", "discriminator", 3), ("generator_mixture", "generator", 4)],
)
def test_recipes_build_the_ensembles_from_yaml(recipe, network, count):
    from pathlib import Path

    import yaml
    from jsonargparse import ArgumentParser

    path = Path(__file__).parents[2] / "recipes" / "tricks" / f"{recipe}.yaml"
    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(GANModule, "model", fail_untyped=False)
    config = {"model": yaml.safe_load(path.read_text())["model"]}
    module = parser.instantiate_classes(parser.parse_object(config)).model
    built = getattr(module, network)
    assert isinstance(built, DiscriminatorEnsemble | GeneratorMixture)
    assert len(built.members) == count
    with torch.no_grad():
        samples = module.generator(module.latent.sample(8))
        assert module.discriminator(samples).shape[0] == 8
