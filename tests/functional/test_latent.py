import math

import pytest
import torch

from gan_tricks.errors import ConfigError
from gan_tricks.functional import Latent, latent_categories, sample_latent, slerp
from gan_tricks.functional.latent import truncate_latent


def test_gaussian_moments():
    z = sample_latent(20000, 8, "gaussian", generator=torch.Generator().manual_seed(0))
    assert z.shape == (20000, 8)
    assert z.mean().abs() < 0.02 and (z.std() - 1).abs() < 0.02


def test_uniform_range_and_variance():
    z = sample_latent(20000, 4, "uniform", generator=torch.Generator().manual_seed(0))
    assert z.min() >= -1 and z.max() <= 1
    assert z.var().item() == pytest.approx(1 / 3, abs=0.01)


def test_spherical_codes_have_norm_sqrt_dim():
    z = Latent(dim=16, distribution="spherical").sample(100)
    assert torch.allclose(z.norm(dim=1), torch.full((100,), math.sqrt(16)), atol=1e-5)


def test_seeded_sampling_is_reproducible():
    a = Latent(3).sample(5, generator=torch.Generator().manual_seed(7))
    b = Latent(3).sample(5, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)


def test_bad_latent_settings():
    with pytest.raises(ConfigError, match="latent.distribution"):
        Latent(2, "cauchy")
    with pytest.raises(ConfigError, match="latent.dim"):
        Latent(0)


def test_slerp_endpoints_norm_and_angle():
    z0 = torch.tensor([[1.0, 0.0]])
    z1 = torch.tensor([[0.0, 1.0]])
    assert torch.allclose(slerp(z0, z1, 0.0), z0, atol=1e-6)
    assert torch.allclose(slerp(z0, z1, 1.0), z1, atol=1e-6)
    mid = slerp(z0, z1, 0.5)
    # Halfway along the unit circle, not the chord's midpoint of norm 0.707.
    assert torch.allclose(mid, torch.tensor([[math.sqrt(0.5), math.sqrt(0.5)]]), atol=1e-6)
    assert torch.allclose(slerp(z0, z0, 0.3), z0, atol=1e-6)


def test_truncation_keeps_codes_inside_and_untouched_codes_equal():
    generator = torch.Generator().manual_seed(0)
    z = Latent(4).sample(5000, generator=generator)
    truncated = truncate_latent(z, 1.0, generator=torch.Generator().manual_seed(1))
    assert truncated.abs().max() <= 1.0
    inside = z.abs() <= 1.0
    assert torch.equal(truncated[inside], z[inside])
    # Redrawn coordinates follow the truncated Gaussian: variance of N(0,1) cut at 1 is 0.291.
    assert truncated.var().item() == pytest.approx(0.2911, abs=0.01)


def test_truncation_leaves_non_gaussian_codes_alone_and_rejects_bad_thresholds():
    z = sample_latent(100, 3, "uniform")
    assert torch.equal(truncate_latent(z, 0.5, "uniform"), z)
    with pytest.raises(ConfigError, match="truncation"):
        truncate_latent(z, 0.0)


def test_latent_sample_applies_truncation():
    z = Latent(8).sample(2000, generator=torch.Generator().manual_seed(0), truncation=0.5)
    assert z.abs().max() <= 0.5


def test_categorical_codes_are_one_hot_uniform_and_prepended():
    latent = Latent(dim=3, categories=5)
    z = latent.sample(20_000, generator=torch.Generator().manual_seed(0))
    assert z.shape == (20_000, 8) and latent.size == 8
    one_hot = z[:, :5]
    assert torch.equal(one_hot.sum(1), torch.ones(20_000))
    assert set(one_hot.unique().tolist()) == {0.0, 1.0}
    shares = torch.bincount(latent_categories(z, 5), minlength=5) / 20_000
    assert shares.sub(0.2).abs().max() < 0.015
    assert z[:, 5:].std().item() == pytest.approx(1.0, abs=0.03)


def test_truncation_leaves_the_category_alone():
    z = Latent(dim=2, categories=3).sample(500, truncation=0.5)
    assert z[:, 3:].abs().max() <= 0.5
    assert torch.equal(z[:, :3].sum(1), torch.ones(500))


@pytest.mark.parametrize("categories", [1, -2])
def test_one_category_or_fewer_is_refused(categories):
    with pytest.raises(ConfigError, match="categories"):
        Latent(dim=2, categories=categories)


def test_several_codes_are_independent_uniform_one_hots():
    latent = Latent(dim=2, categories=4, codes=3)
    z = latent.sample(30_000, generator=torch.Generator().manual_seed(1))
    assert z.shape == (30_000, 14) and latent.size == 14
    blocks = z[:, :12].reshape(-1, 3, 4)
    assert torch.equal(blocks.sum(2), torch.ones(30_000, 3))
    drawn = latent_categories(z, 4, codes=3)
    assert drawn.shape == (30_000, 3) and torch.equal(drawn, blocks.argmax(2))
    pairs = torch.bincount(drawn[:, 0] * 4 + drawn[:, 1], minlength=16) / 30_000
    assert pairs.sub(1 / 16).abs().max() < 0.01  # joint uniform: the codes are independent


def test_one_code_draws_what_it_drew_before_codes_existed():
    generator = torch.Generator().manual_seed(5)
    z = Latent(dim=2, categories=5, codes=1).sample(100, generator=generator)
    generator = torch.Generator().manual_seed(5)
    continuous = torch.randn(100, 2, generator=generator)
    drawn = torch.randint(5, (100,), generator=generator)
    assert torch.equal(z[:, 5:], continuous) and torch.equal(latent_categories(z, 5), drawn)


@pytest.mark.parametrize("kwargs", [{"codes": 0, "categories": 3}, {"codes": 2}])
def test_bad_codes_are_refused(kwargs):
    with pytest.raises(ConfigError, match="codes"):
        Latent(dim=2, **kwargs)
