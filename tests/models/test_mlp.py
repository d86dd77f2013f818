from __future__ import annotations

import pytest
import torch
from torch import nn

from gan_tricks.errors import ConfigError
from gan_tricks.models import MLPDiscriminator, MLPGenerator
from gan_tricks.testing import assert_logit_sees_the_batch


def test_shapes():
    generator = MLPGenerator(latent_dim=3, out_dim=5, width=8, depth=2)
    discriminator = MLPDiscriminator(in_dim=5, width=8, depth=2)
    assert generator.latent_dim == 3
    samples = generator(torch.randn(4, 3))
    assert samples.shape == (4, 5)
    assert discriminator(samples).shape == (4,)
    assert discriminator(samples[:1]).shape == (1,)


def test_depth_counts_hidden_layers():
    generator = MLPGenerator(width=8, depth=4)
    discriminator = MLPDiscriminator(width=8, depth=4)
    assert sum(isinstance(m, nn.Linear) for m in generator.modules()) == 5
    assert sum(isinstance(m, nn.Linear) for m in discriminator.modules()) == 5


@pytest.mark.parametrize("norm", ["batch", "layer", "none"])
@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "gelu", "tanh"])
def test_norm_and_activation_options(norm, activation):
    generator = MLPGenerator(width=8, norm=norm, activation=activation)
    discriminator = MLPDiscriminator(width=8, norm=norm, activation=activation)
    assert discriminator(generator(torch.randn(4, 2))).shape == (4,)


def test_norm_types():
    assert any(isinstance(m, nn.BatchNorm1d) for m in MLPGenerator(width=8, norm="batch").modules())
    assert any(
        isinstance(m, nn.LayerNorm) for m in MLPDiscriminator(width=8, norm="layer").modules()
    )


def test_instance_norm_is_rejected():
    with pytest.raises(ConfigError, match="instance"):
        MLPGenerator(norm="instance")


def test_discriminator_negative_slope_is_used():
    discriminator = MLPDiscriminator(width=8, negative_slope=0.05)
    slopes = {m.negative_slope for m in discriminator.modules() if isinstance(m, nn.LeakyReLU)}
    assert slopes == {0.05}


def test_out_activation():
    generator = MLPGenerator(width=8, out_activation="tanh")
    assert isinstance(generator.net[-1], nn.Tanh)
    assert generator(torch.randn(16, 2) * 100).abs().max() <= 1


def test_dropout_only_when_requested():
    assert not any(isinstance(m, nn.Dropout) for m in MLPGenerator(width=8).modules())
    dropouts = [m for m in MLPGenerator(width=8, depth=3, dropout=0.3).modules()]
    dropouts = [m for m in dropouts if isinstance(m, nn.Dropout)]
    assert len(dropouts) == 3
    assert all(m.p == 0.3 for m in dropouts)


@pytest.mark.parametrize("dropout", [-0.1, 1.0])
def test_bad_dropout_raises(dropout):
    with pytest.raises(ConfigError, match="dropout"):
        MLPGenerator(dropout=dropout)


def test_out_shape_makes_images_that_the_discriminator_reads_flat():
    generator = MLPGenerator(latent_dim=3, width=8, depth=1, out_shape=[3, 2, 2])
    assert generator.out_dim == 12
    z = torch.randn(4, 3)
    images = generator(z)
    assert images.shape == (4, 3, 2, 2)
    # The same numbers as the flat output, in C, H, W order.
    assert torch.equal(images.flatten(1), generator.net(z))
    discriminator = MLPDiscriminator(in_dim=12, width=8, depth=1)
    assert torch.equal(discriminator(images), discriminator(images.flatten(1)))


def test_default_output_is_two_dimensional():
    assert MLPGenerator(latent_dim=2)(torch.randn(5, 2)).shape == (5, 2)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"out_dim": 10, "out_shape": [3, 2, 2]}, "out_dim 10 does not match out_shape"),
        ({"out_shape": []}, "out_shape must be"),
        ({"out_shape": [3, 0]}, "out_shape must be"),
        ({"out_dim": 0}, "out_dim must"),
    ],
)
def test_bad_output_sizes_raise(options, message):
    with pytest.raises(ConfigError, match=message):
        MLPGenerator(**options)


@pytest.mark.parametrize(
    ("build", "argument"),
    [
        (lambda: MLPGenerator(width=0), "width"),
        (lambda: MLPGenerator(depth=0), "depth"),
        (lambda: MLPDiscriminator(in_dim=0), "in_dim"),
        (lambda: MLPGenerator(activation="swish"), "activation"),
        (lambda: MLPGenerator(out_activation="swish"), "out_activation"),
        (lambda: MLPDiscriminator(init="he"), "init"),
    ],
)
def test_bad_arguments_raise_naming_the_argument(build, argument):
    with pytest.raises(ConfigError, match=f"^{argument} must"):
        build()


def test_init_scheme_is_applied():
    generator = MLPGenerator(width=64, init="orthogonal")
    hidden = generator.net[3]  # after Linear, norm, act
    assert isinstance(hidden, nn.Linear)
    weight = hidden.weight.detach()
    torch.testing.assert_close(weight @ weight.T, torch.eye(64), atol=1e-5, rtol=0)


@pytest.mark.parametrize("norm", ["none", "batch", "layer"])
def test_gradients_reach_every_parameter(norm):
    torch.manual_seed(0)
    generator = MLPGenerator(width=8, norm=norm, dropout=0.1, activation="leaky_relu")
    discriminator = MLPDiscriminator(width=8, norm=norm)
    discriminator(generator(torch.randn(8, 2))).sum().backward()
    for model in (generator, discriminator):
        for name, parameter in model.named_parameters():
            assert parameter.grad is not None, name
            assert torch.isfinite(parameter.grad).all(), name


def test_minibatch_std_is_off_by_default_and_sits_before_the_last_linear():
    from gan_tricks.layers.minibatch import MinibatchStdDev

    plain = MLPDiscriminator(width=8, depth=2)
    assert not any(isinstance(m, MinibatchStdDev) for m in plain.modules())
    with_std = MLPDiscriminator(width=8, depth=2, minibatch_std=4)
    stats = [m for m in with_std.modules() if isinstance(m, MinibatchStdDev)]
    assert len(stats) == 1 and stats[0].group_size == 4
    assert with_std.net[-2] is stats[0]  # right before the last linear, which takes width + 1
    assert with_std.net[-1].in_features == 9


def test_minibatch_std_makes_a_logit_depend_on_the_rest_of_the_batch():
    torch.manual_seed(0)
    x = torch.randn(8, 2)
    others = x.clone()
    others[1:] = torch.randn(7, 2) * 5
    plain = MLPDiscriminator(width=8, depth=2)
    torch.testing.assert_close(plain(x)[0], plain(others)[0])
    with_std = MLPDiscriminator(width=8, depth=2, minibatch_std=4)
    assert not torch.allclose(with_std(x)[0], with_std(others)[0])
    assert_logit_sees_the_batch(with_std, x)


def test_negative_minibatch_std_raises():
    with pytest.raises(ConfigError, match="^minibatch_std must"):
        MLPDiscriminator(minibatch_std=-1)
