from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from gan_tricks.errors import ConfigError
from gan_tricks.layers import BLOCK_TYPES, NORMS, SHORTCUTS, DiscriminatorBlock, GeneratorBlock
from gan_tricks.models import ResNetDiscriminator, ResNetGenerator
from gan_tricks.testing import assert_logit_sees_the_batch

IMAGE_SIZES = [8, 16, 32, 64]


def blocks_of(model: nn.Module, block_class: type) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, block_class)]


@pytest.mark.parametrize("image_size", IMAGE_SIZES)
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes(image_size, channels):
    generator = ResNetGenerator(latent_dim=6, image_size=image_size, channels=channels, width=8)
    discriminator = ResNetDiscriminator(image_size=image_size, channels=channels, width=8)
    assert generator.latent_dim == 6
    images = generator(torch.randn(2, 6))
    assert images.shape == (2, channels, image_size, image_size)
    assert discriminator(images).shape == (2,)


@pytest.mark.parametrize("image_size", IMAGE_SIZES)
def test_block_counts(image_size):
    n_resample = image_size.bit_length() - 3
    generator_blocks = blocks_of(
        ResNetGenerator(image_size=image_size, width=8, extra_blocks=1), GeneratorBlock
    )
    assert [b.upsample for b in generator_blocks] == [True] * n_resample + [False]
    discriminator_blocks = blocks_of(
        ResNetDiscriminator(image_size=image_size, width=8), DiscriminatorBlock
    )
    assert [b.downsample for b in discriminator_blocks] == [True] * n_resample + [False] * 2
    assert [b.first for b in discriminator_blocks] == [True] + [False] * (n_resample + 1)


def test_custom_widths():
    generator = ResNetGenerator(image_size=16, widths=(16, 8, 4), extra_blocks=1)
    assert [(b.in_channels, b.out_channels) for b in blocks_of(generator, GeneratorBlock)] == [
        (16, 8),
        (8, 4),
        (4, 4),
    ]
    assert generator.project.out_features == 16 * 16
    assert generator(torch.randn(2, 128)).shape == (2, 3, 16, 16)

    discriminator = ResNetDiscriminator(image_size=16, channels=1, widths=[4, 8], extra_blocks=1)
    pairs = [(b.in_channels, b.out_channels) for b in blocks_of(discriminator, DiscriminatorBlock)]
    assert pairs == [(1, 4), (4, 8), (8, 8)]
    assert discriminator.to_logit.in_features == 8
    assert discriminator(torch.randn(2, 1, 16, 16)).shape == (2,)


@pytest.mark.parametrize(
    ("build", "expected_count"),
    [
        (lambda widths: ResNetGenerator(image_size=32, widths=widths), 4),
        (lambda widths: ResNetDiscriminator(image_size=32, widths=widths), 3),
    ],
)
def test_widths_of_wrong_length_raise(build, expected_count):
    for length in (expected_count - 1, expected_count + 1):
        with pytest.raises(ConfigError, match=rf"^widths must have {expected_count} entries"):
            build((8,) * length)
    with pytest.raises(ConfigError, match="widths"):
        build((8,) * (expected_count - 1) + (0,))


@pytest.mark.parametrize("model_class", [ResNetGenerator, ResNetDiscriminator])
@pytest.mark.parametrize("image_size", [4, 28, 128])
def test_unsupported_image_size_raises(model_class, image_size):
    with pytest.raises(ConfigError, match=r"^image_size must be one of 8, 16, 32, 64"):
        model_class(image_size=image_size)


@pytest.mark.parametrize("model_class", [ResNetGenerator, ResNetDiscriminator])
def test_bad_options_raise(model_class):
    with pytest.raises(ConfigError, match=r"^extra_blocks"):
        model_class(extra_blocks=-1)
    with pytest.raises(ConfigError, match=r"^block_type must be one of"):
        model_class(block_type="dense")
    with pytest.raises(ConfigError, match=r"^shortcut must be one of"):
        model_class(shortcut="option_a")
    with pytest.raises(ConfigError, match=r"^norm must be one of"):
        model_class(norm="spectral")


@pytest.mark.parametrize(
    ("block_type", "shortcut"), list(itertools.product(BLOCK_TYPES, SHORTCUTS))
)
def test_block_options_reach_every_block(block_type, shortcut):
    generator = ResNetGenerator(
        latent_dim=4, image_size=8, width=8, block_type=block_type, shortcut=shortcut
    )
    discriminator = ResNetDiscriminator(
        image_size=8, width=8, block_type=block_type, shortcut=shortcut
    )
    blocks = blocks_of(generator, GeneratorBlock) + blocks_of(discriminator, DiscriminatorBlock)
    assert {(b.block_type, b.shortcut) for b in blocks} == {(block_type, shortcut)}
    assert discriminator(generator(torch.randn(2, 4))).shape == (2,)


def test_zero_pad_first_discriminator_block_is_option_a():
    discriminator = ResNetDiscriminator(image_size=8, width=8, shortcut="zero_pad")
    first = blocks_of(discriminator, DiscriminatorBlock)[0]
    with torch.no_grad():
        conv = [m for m in first.main if isinstance(m, nn.Conv2d)][-1]
        conv.weight.zero_()
        conv.bias.zero_()
    images = torch.randn(2, 3, 8, 8)
    out = first(images)
    torch.testing.assert_close(out[:, :3], nn.functional.avg_pool2d(images, 2))
    assert torch.all(out[:, 3:] == 0)
    assert not any(
        isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) for m in discriminator.modules()
    )


@pytest.mark.parametrize("norm", NORMS)
def test_norm_options(norm):
    generator = ResNetGenerator(latent_dim=4, image_size=8, width=8, norm=norm)
    discriminator = ResNetDiscriminator(image_size=8, width=8, norm=norm)
    assert discriminator(generator(torch.randn(2, 4))).shape == (2,)


def test_discriminator_defaults_follow_sngan():
    discriminator = ResNetDiscriminator(image_size=32, width=8)
    assert not any(isinstance(m, nn.modules.batchnorm._NormBase) for m in discriminator.modules())
    assert len(blocks_of(discriminator, DiscriminatorBlock)) == 3 + 2


def test_global_sum_pooling():
    discriminator = ResNetDiscriminator(image_size=8, width=4, extra_blocks=0)
    with torch.no_grad():
        discriminator.to_logit.weight.fill_(1.0)
        discriminator.to_logit.bias.zero_()
    images = torch.randn(2, 3, 8, 8)
    features = discriminator.activation(discriminator.blocks(images))
    torch.testing.assert_close(discriminator(images), features.sum(dim=(1, 2, 3)))


@pytest.mark.parametrize(
    ("block_type", "shortcut", "norm"),
    [
        ("residual", "project_when_needed", "batch"),
        ("highway", "project_always", "layer"),
        ("plain", "zero_pad", "instance"),
        ("highway", "zero_pad", "none"),
    ],
)
def test_gradients_reach_every_parameter(block_type, shortcut, norm):
    torch.manual_seed(0)
    options = {"block_type": block_type, "shortcut": shortcut, "norm": norm}
    generator = ResNetGenerator(
        latent_dim=4, image_size=16, widths=(8, 8, 4), extra_blocks=1, **options
    )
    discriminator = ResNetDiscriminator(image_size=16, widths=(4, 8), extra_blocks=1, **options)
    discriminator(generator(torch.randn(4, 4))).sum().backward()
    for model in (generator, discriminator):
        for name, parameter in model.named_parameters():
            assert parameter.grad is not None, name
            assert torch.isfinite(parameter.grad).all(), name


def test_minibatch_std_adds_one_channel_before_the_linear_layer():
    from gan_tricks.layers.minibatch import MinibatchStdDev

    plain = ResNetDiscriminator(image_size=8, channels=1, width=8, extra_blocks=0)
    assert not any(isinstance(m, MinibatchStdDev) for m in plain.modules())
    discriminator = ResNetDiscriminator(
        image_size=8, channels=1, width=8, extra_blocks=0, minibatch_std=4
    )
    assert isinstance(discriminator.batch_stats, MinibatchStdDev)
    assert discriminator.to_logit.in_features == 9
    torch.manual_seed(0)
    images = torch.randn(4, 1, 8, 8)
    assert_logit_sees_the_batch(discriminator, images)
    collapsed = images.clone()
    collapsed[1:] = images[:1]
    torch.testing.assert_close(plain(images)[0], plain(collapsed)[0])


def test_negative_minibatch_std_raises():
    with pytest.raises(ConfigError, match="^minibatch_std must"):
        ResNetDiscriminator(minibatch_std=-1)
