from __future__ import annotations

import pytest
import torch
from torch import nn

from gan_tricks.errors import ConfigError
from gan_tricks.layers import DOWNSAMPLES, NORMS, UPSAMPLES
from gan_tricks.models import DCGANDiscriminator, DCGANGenerator
from gan_tricks.testing import assert_logit_sees_the_batch

IMAGE_SIZES = [8, 16, 32, 64]


@pytest.mark.parametrize("image_size", IMAGE_SIZES)
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes(image_size, channels):
    generator = DCGANGenerator(latent_dim=10, image_size=image_size, channels=channels, width=8)
    discriminator = DCGANDiscriminator(image_size=image_size, channels=channels, width=8)
    assert generator.latent_dim == 10
    images = generator(torch.randn(2, 10))
    assert images.shape == (2, channels, image_size, image_size)
    assert discriminator(images).shape == (2,)


def test_channel_progression_follows_dcgan():
    generator = DCGANGenerator(image_size=64, width=8)
    generator_convs = [m for m in generator.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [m.out_channels for m in generator_convs] == [64, 32, 16, 8, 3]
    assert generator_convs[0].kernel_size == (4, 4)
    discriminator = DCGANDiscriminator(image_size=64, width=8)
    discriminator_convs = [m for m in discriminator.modules() if isinstance(m, nn.Conv2d)]
    assert [m.out_channels for m in discriminator_convs] == [8, 16, 32, 64, 1]


def test_no_norm_on_generator_output_or_discriminator_input():
    generator = DCGANGenerator(image_size=16, width=8)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in generator.modules()) == 2
    assert isinstance(generator.net[-1], nn.Tanh)
    discriminator = DCGANDiscriminator(image_size=16, width=8)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in discriminator.modules()) == 1
    assert isinstance(discriminator.net[1], nn.LeakyReLU)


@pytest.mark.parametrize("upsample", UPSAMPLES)
@pytest.mark.parametrize("norm", NORMS)
def test_generator_options(upsample, norm):
    generator = DCGANGenerator(latent_dim=4, image_size=16, width=8, upsample=upsample, norm=norm)
    assert generator(torch.randn(2, 4)).shape == (2, 3, 16, 16)


@pytest.mark.parametrize("downsample", DOWNSAMPLES)
@pytest.mark.parametrize("norm", NORMS)
def test_discriminator_options(downsample, norm):
    discriminator = DCGANDiscriminator(image_size=16, width=8, downsample=downsample, norm=norm)
    assert discriminator(torch.randn(2, 3, 16, 16)).shape == (2,)


def test_option_types_reach_the_modules():
    generator = DCGANGenerator(image_size=16, width=8, upsample="pixelshuffle", norm="instance")
    assert sum(isinstance(m, nn.PixelShuffle) for m in generator.modules()) == 2
    assert sum(isinstance(m, nn.InstanceNorm2d) for m in generator.modules()) == 2
    discriminator = DCGANDiscriminator(
        image_size=16, width=8, downsample="avgpool", norm="layer", negative_slope=0.1
    )
    assert sum(isinstance(m, nn.AvgPool2d) for m in discriminator.modules()) == 2
    assert sum(isinstance(m, nn.GroupNorm) for m in discriminator.modules()) == 1
    slopes = {m.negative_slope for m in discriminator.modules() if isinstance(m, nn.LeakyReLU)}
    assert slopes == {0.1}


@pytest.mark.parametrize("model_class", [DCGANGenerator, DCGANDiscriminator])
@pytest.mark.parametrize("image_size", [4, 28, 128])
def test_unsupported_image_size_raises(model_class, image_size):
    with pytest.raises(ConfigError, match=r"^image_size must be one of 8, 16, 32, 64"):
        model_class(image_size=image_size)


@pytest.mark.parametrize("image_size", IMAGE_SIZES)
def test_dropout_only_when_requested(image_size):
    plain = DCGANGenerator(image_size=image_size, width=8)
    assert not any(isinstance(m, nn.Dropout2d) for m in plain.modules())
    noisy = DCGANGenerator(image_size=image_size, width=8, dropout=0.5)
    dropouts = [m for m in noisy.modules() if isinstance(m, nn.Dropout2d)]
    # One after the 4x4 projection and one per hidden upsampling stage.
    assert len(dropouts) == image_size.bit_length() - 3
    assert all(m.p == 0.5 for m in dropouts)


def test_bad_dropout_raises():
    with pytest.raises(ConfigError, match=r"^dropout"):
        DCGANGenerator(dropout=1.5)


def test_dcgan_init_is_the_default():
    torch.manual_seed(0)
    generator = DCGANGenerator(image_size=32, width=64)
    first = generator.net[0]
    assert first.weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert torch.all(first.bias == 0)


def test_unknown_layer_names_raise():
    with pytest.raises(ConfigError, match=r"^upsample must be one of"):
        DCGANGenerator(upsample="bilinear")
    with pytest.raises(ConfigError, match=r"^downsample must be one of"):
        DCGANDiscriminator(downsample="maxpool")
    with pytest.raises(ConfigError, match=r"^out_activation must be one of"):
        DCGANGenerator(out_activation="softmax")


@pytest.mark.parametrize("image_size", [8, 32])
@pytest.mark.parametrize(
    ("upsample", "downsample", "norm"),
    [("transpose", "stride", "batch"), ("pixelshuffle", "avgpool", "layer")],
)
def test_gradients_reach_every_parameter(image_size, upsample, downsample, norm):
    torch.manual_seed(0)
    generator = DCGANGenerator(
        latent_dim=8, image_size=image_size, width=8, upsample=upsample, norm=norm, dropout=0.2
    )
    discriminator = DCGANDiscriminator(
        image_size=image_size, width=8, downsample=downsample, norm=norm
    )
    discriminator(generator(torch.randn(4, 8))).sum().backward()
    for model in (generator, discriminator):
        for name, parameter in model.named_parameters():
            assert parameter.grad is not None, name
            assert torch.isfinite(parameter.grad).all(), name


def test_minibatch_std_sits_before_the_final_conv():
    from gan_tricks.layers.minibatch import MinibatchStdDev

    plain = DCGANDiscriminator(image_size=16, channels=1, width=8)
    assert not any(isinstance(m, MinibatchStdDev) for m in plain.modules())
    discriminator = DCGANDiscriminator(image_size=16, channels=1, width=8, minibatch_std=2)
    assert isinstance(discriminator.net[-2], MinibatchStdDev)
    assert discriminator.net[-2].group_size == 2
    assert discriminator.net[-1].in_channels == plain.net[-1].in_channels + 1


def test_minibatch_std_makes_a_logit_depend_on_the_rest_of_the_batch():
    torch.manual_seed(0)
    discriminator = DCGANDiscriminator(
        image_size=8, channels=1, width=8, norm="none", minibatch_std=4
    )
    assert_logit_sees_the_batch(discriminator, torch.randn(4, 1, 8, 8))


def test_negative_minibatch_std_raises():
    with pytest.raises(ConfigError, match="^minibatch_std must"):
        DCGANDiscriminator(minibatch_std=-1)
