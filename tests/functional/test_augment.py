"""DiffAugment's transforms, ADA's dosing and heuristic, and the consistency penalty."""

import pytest
import torch

from gan_tricks.errors import ConfigError
from gan_tricks.functional.augment import (
    ada_heuristic,
    ada_update,
    augment_with_probability,
    consistency_penalty,
    diff_augment,
    gaussian_jitter,
    parse_policy,
    random_brightness,
    random_contrast,
    random_cutout,
    random_saturation,
    random_translation,
)


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def images(n: int = 8, channels: int = 3, size: int = 16) -> torch.Tensor:
    # Strictly positive, so the only zeros after an augmentation are the ones it made.
    return torch.rand(n, channels, size, size, generator=seeded(123)) + 0.5


def test_brightness_adds_one_uniform_offset_per_sample():
    x = images(n=2000, size=4)
    offsets = random_brightness(x, seeded()) - x
    per_sample = offsets[:, :1, :1, :1]
    assert torch.allclose(offsets, per_sample.expand_as(offsets), atol=1e-6)
    assert per_sample.min() >= -0.5 and per_sample.max() <= 0.5
    assert per_sample.mean().abs() < 0.02 and per_sample.var().item() == pytest.approx(1 / 12, 0.1)
    expected = x + (torch.rand(2000, 1, 1, 1, generator=seeded()) - 0.5)
    assert torch.allclose(random_brightness(x, seeded()), expected)


def test_saturation_and_contrast_match_their_formulas():
    x = images()
    draws = torch.rand(8, 1, 1, 1, generator=seeded())
    channel_mean = x.mean(dim=1, keepdim=True)
    expected = (x - channel_mean) * (2 * draws) + channel_mean
    assert torch.allclose(random_saturation(x, seeded()), expected, atol=1e-6)
    image_mean = x.mean(dim=(1, 2, 3), keepdim=True)
    expected = (x - image_mean) * (draws + 0.5) + image_mean
    assert torch.allclose(random_contrast(x, seeded()), expected, atol=1e-6)
    # Contrast keeps each image's mean; saturation keeps grey images as they are.
    assert torch.allclose(random_contrast(x, seeded()).mean(dim=(1, 2, 3)), x.mean(dim=(1, 2, 3)))
    grey = images(channels=1)
    assert torch.allclose(random_saturation(grey, seeded()), grey)


def shifted(image: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Reference by slicing: output pixel (i, j) = input (i - dy, j - dx), zero outside."""
    out = torch.zeros_like(image)
    _, height, width = image.shape
    out[:, max(dy, 0) : height + min(dy, 0), max(dx, 0) : width + min(dx, 0)] = image[
        :, max(-dy, 0) : height + min(-dy, 0), max(-dx, 0) : width + min(-dx, 0)
    ]
    return out


def test_translation_shifts_by_whole_pixels_with_zero_fill():
    x = images(n=40, size=16)
    out = random_translation(x, seeded())
    limit = 2  # 16 / 8
    seen = set()
    for image, result in zip(x, out):
        matches = [
            (dy, dx)
            for dy in range(-limit, limit + 1)
            for dx in range(-limit, limit + 1)
            if torch.equal(result, shifted(image, dy, dx))
        ]
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) > 15  # shifts vary per sample over the 25 possible


def test_cutout_zeroes_exactly_one_square_of_half_the_size_inside_the_image():
    x = images(n=50, size=16)
    out = random_cutout(x, seeded())
    for image, result in zip(x, out):
        zero = result == 0
        assert torch.equal(zero, zero[:1].expand_as(zero))  # same square in every channel
        rows = zero[0].any(dim=1).nonzero().squeeze(1)
        cols = zero[0].any(dim=0).nonzero().squeeze(1)
        assert len(rows) == len(cols) == 8 and zero[0].sum() == 64
        assert rows[-1] - rows[0] == 7 and cols[-1] - cols[0] == 7  # one contiguous square
        assert torch.equal(result[~zero], image[~zero])
    corners = {tuple(((r == 0)[0].nonzero()[0]).tolist()) for r in out}
    assert len(corners) > 20


def test_gradients_flow_through_every_augmentation():
    x = images(n=2, channels=2, size=4).double().requires_grad_()

    def augment(inputs):
        return diff_augment(inputs, "color,translation,cutout", seeded(7))

    assert torch.autograd.gradcheck(augment, (x,))
    # Translation and cutout pass each surviving pixel's gradient through unchanged: as many
    # input pixels get no gradient as output pixels are filled with zeros.
    for transform in (random_translation, random_cutout):
        (grad,) = torch.autograd.grad(transform(x, seeded(3)).sum(), x)
        assert set(grad.unique().tolist()) == {0.0, 1.0}
        filled = transform(torch.ones_like(x), seeded(3)) == 0
        assert torch.equal((grad == 0).sum(dim=(1, 2, 3)), filled.sum(dim=(1, 2, 3)))
    (grad,) = torch.autograd.grad(random_cutout(x, seeded(3)).sum(), x)
    assert torch.equal(grad == 0, random_cutout(torch.ones_like(x), seeded(3)) == 0)


def test_policy_order_and_reproducibility():
    x = images()
    generator = seeded(5)
    manual = random_brightness(x, generator)
    manual = random_cutout(random_translation(manual, generator), generator)
    assert torch.equal(diff_augment(x, "brightness,translation,cutout", seeded(5)), manual)
    torch.manual_seed(9)
    first = diff_augment(x)
    torch.manual_seed(9)
    assert torch.equal(diff_augment(x), first)
    assert not torch.equal(diff_augment(x), first)
    assert len(parse_policy("color, translation,cutout")) == 5


def test_non_images_and_bad_policies_raise_config_errors():
    with pytest.raises(ConfigError, match=r"\(N, C, H, W\)"):
        diff_augment(torch.randn(8, 2))
    with pytest.raises(ConfigError, match="policy"):
        diff_augment(images(), "color,rotation")
    with pytest.raises(ConfigError, match="policy"):
        parse_policy("")
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        augment_with_probability(images(), 1.5)


def test_augment_with_probability_doses_each_transform_per_sample():
    x = images(n=4000, channels=1, size=4)
    assert augment_with_probability(x, 0.0, generator=seeded()) is x
    assert torch.equal(
        augment_with_probability(x, 1.0, "color,translation", seeded(1)),
        diff_augment(x, "color,translation", seeded(1)),
    )
    # Two independent transforms at p = 0.5: a quarter of the samples stay untouched.
    out = augment_with_probability(x, 0.5, "brightness,contrast", seeded(2))
    untouched = (out == x).flatten(1).all(dim=1).float().mean()
    assert untouched.item() == pytest.approx(0.25, abs=0.025)
    one = augment_with_probability(x, 0.3, "brightness", seeded(3))
    changed = (one != x).flatten(1).any(dim=1).float().mean()
    assert changed.item() == pytest.approx(0.3, abs=0.025)


def test_ada_heuristic_is_the_mean_sign_of_real_logits():
    assert ada_heuristic(torch.tensor([1.0, -2.0, 3.0, 0.0])).item() == 0.25
    assert ada_heuristic(torch.tensor([[2.0, 1.0], [-1.0, 5.0]])).item() == 0.5


def test_ada_update_moves_p_by_the_stated_step_towards_the_target():
    step = 64 * 4 / 50_000
    assert ada_update(0.5, 0.9, 0.6, 64, 4, 50_000) == pytest.approx(0.5 + step)
    assert ada_update(0.5, 0.2, 0.6, 64, 4, 50_000) == pytest.approx(0.5 - step)
    assert ada_update(0.5, 0.6, 0.6, 64, 4, 50_000) == 0.5
    assert ada_update(0.999, 1.0, 0.6, 64, 4, 50_000) == 1.0
    assert ada_update(0.001, -1.0, 0.6, 64, 4, 50_000) == 0.0


def test_gaussian_jitter_has_the_stated_std():
    x = torch.zeros(20_000, 2)
    noise = gaussian_jitter(x, 0.05, seeded())
    assert noise.mean().abs() < 1e-3 and noise.std().item() == pytest.approx(0.05, rel=0.02)


def test_consistency_penalty_known_value_and_zero_for_an_invariant_discriminator():
    x = torch.randn(6, 1, 8, 8)

    def discriminator(inputs):
        return 2 * inputs.sum(dim=(1, 2, 3))

    logits = discriminator(x)
    penalty = consistency_penalty(discriminator, x, logits, lambda inputs: inputs + 1)
    assert penalty.item() == pytest.approx((2 * 64) ** 2)
    # Content away from the border: any shift of up to 2 pixels keeps every pixel, and the sum.
    centred = torch.zeros(6, 1, 16, 16)
    centred[:, :, 2:14, 2:14] = torch.rand(6, 1, 12, 12) + 0.1
    invariant = consistency_penalty(
        discriminator,
        centred,
        discriminator(centred),
        lambda inputs: diff_augment(inputs, "translation"),
    )
    assert invariant.item() == pytest.approx(0.0, abs=1e-8)


def test_consistency_penalty_reaches_the_discriminator_weights():
    discriminator = torch.nn.Linear(2, 1)
    x = torch.randn(32, 2)
    logits = discriminator(x)
    penalty = consistency_penalty(discriminator, x, logits, lambda inputs: inputs + 0.1)
    penalty.backward()
    # D(x + 0.1) - D(x) = 0.1 * (w1 + w2): the penalty only sees the weights, not the bias.
    w = discriminator.weight.detach()
    assert penalty.item() == pytest.approx((0.1 * w.sum()).pow(2).item(), rel=1e-4)
    assert discriminator.weight.grad.abs().sum() > 0
    assert discriminator.bias.grad.abs().item() < 1e-6
