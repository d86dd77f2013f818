from __future__ import annotations

import pytest
import torch
from torch import nn

from gan_tricks.errors import ConfigError
from gan_tricks.layers import (
    ACTIVATIONS,
    DOWNSAMPLES,
    INITS,
    NORMS,
    UPSAMPLES,
    check_at_least,
    init_weights,
    make_activation,
    make_downsample,
    make_norm,
    make_upsample,
)

EXPECTED_ACTIVATIONS = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "identity": nn.Identity,
    "none": nn.Identity,
}


def test_name_tuples_match_the_documented_names():
    assert set(ACTIVATIONS) == set(EXPECTED_ACTIVATIONS)
    assert set(NORMS) == {"batch", "instance", "layer", "none"}
    assert set(UPSAMPLES) == {"transpose", "pixelshuffle", "nearest"}
    assert set(DOWNSAMPLES) == {"stride", "avgpool"}
    assert set(INITS) == {"dcgan", "orthogonal", "xavier", "kaiming", "default"}


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_builds_the_named_module_and_keeps_shape(name):
    layer = make_activation(name)
    assert type(layer) is EXPECTED_ACTIVATIONS[name]
    x = torch.randn(3, 4, 5)
    y = layer(x)
    assert y.shape == x.shape
    reference = {
        "relu": torch.relu(x),
        "tanh": torch.tanh(x),
        "sigmoid": torch.sigmoid(x),
        "identity": x,
        "none": x,
    }
    if name in reference:
        torch.testing.assert_close(y, reference[name])


def test_leaky_relu_uses_negative_slope():
    x = torch.tensor([-2.0, 3.0])
    torch.testing.assert_close(make_activation("leaky_relu", 0.1)(x), torch.tensor([-0.2, 3.0]))
    torch.testing.assert_close(make_activation("leaky_relu")(x), torch.tensor([-0.4, 3.0]))


@pytest.mark.parametrize(
    ("name", "dims", "expected"),
    [
        ("batch", 2, nn.BatchNorm2d),
        ("batch", 1, nn.BatchNorm1d),
        ("instance", 2, nn.InstanceNorm2d),
        ("layer", 2, nn.GroupNorm),
        ("layer", 1, nn.LayerNorm),
        ("none", 2, nn.Identity),
        ("none", 1, nn.Identity),
    ],
)
def test_norm_builds_the_named_module_and_keeps_shape(name, dims, expected):
    layer = make_norm(name, 6, dims=dims)
    assert type(layer) is expected
    x = torch.randn(4, 6, 5, 5) if dims == 2 else torch.randn(4, 6)
    assert layer(x).shape == x.shape


def test_instance_norm_is_affine():
    layer = make_norm("instance", 6)
    assert layer.affine
    assert layer.weight.shape == (6,)


def test_layer_norm_on_feature_maps_normalizes_over_channels_and_space():
    layer = make_norm("layer", 6)
    assert layer.num_groups == 1
    y = layer(torch.randn(2, 6, 5, 5) * 3 + 7)
    per_sample = y.flatten(1)
    torch.testing.assert_close(per_sample.mean(1), torch.zeros(2), atol=1e-5, rtol=0)
    torch.testing.assert_close(per_sample.std(1, unbiased=False), torch.ones(2), atol=1e-3, rtol=0)


def test_instance_norm_on_vectors_raises():
    with pytest.raises(ConfigError, match="instance"):
        make_norm("instance", 6, dims=1)


def test_norm_with_unsupported_dims_raises():
    with pytest.raises(ConfigError, match="dims"):
        make_norm("batch", 6, dims=3)


@pytest.mark.parametrize("name", UPSAMPLES)
def test_upsample_doubles_size_and_maps_channels(name):
    layer = make_upsample(name, 6, 5)
    y = layer(torch.randn(2, 6, 4, 7))
    assert y.shape == (2, 5, 8, 14)


def test_upsample_layer_types():
    assert isinstance(make_upsample("transpose", 6, 5), nn.ConvTranspose2d)
    pixelshuffle = make_upsample("pixelshuffle", 6, 5)
    assert pixelshuffle[0].out_channels == 20
    assert isinstance(pixelshuffle[1], nn.PixelShuffle)
    nearest = make_upsample("nearest", 6, 5)
    assert isinstance(nearest[0], nn.Upsample)
    assert nearest[0].mode == "nearest"
    assert isinstance(nearest[1], nn.Conv2d)


@pytest.mark.parametrize("name", DOWNSAMPLES)
def test_downsample_halves_size_and_maps_channels(name):
    layer = make_downsample(name, 6, 5)
    y = layer(torch.randn(2, 6, 8, 14))
    assert y.shape == (2, 5, 4, 7)


def test_downsample_layer_types():
    stride = make_downsample("stride", 6, 5)
    assert isinstance(stride, nn.Conv2d)
    assert stride.stride == (2, 2)
    avgpool = make_downsample("avgpool", 6, 5)
    assert isinstance(avgpool[0], nn.Conv2d)
    assert isinstance(avgpool[1], nn.AvgPool2d)


@pytest.mark.parametrize(
    ("build", "valid"),
    [
        (lambda: make_activation("swish"), ACTIVATIONS),
        (lambda: make_norm("weight", 4), NORMS),
        (lambda: make_upsample("bilinear", 4, 4), UPSAMPLES),
        (lambda: make_downsample("maxpool", 4, 4), DOWNSAMPLES),
        (lambda: init_weights(nn.Linear(2, 2), "he"), INITS),
    ],
)
def test_unknown_names_raise_and_list_valid_names(build, valid):
    with pytest.raises(ConfigError) as error:
        build()
    message = str(error.value)
    for name in valid:
        assert name in message


def test_error_names_the_callers_argument():
    with pytest.raises(ConfigError, match=r"^out_activation must be one of"):
        make_activation("soft", arg_name="out_activation")


def test_check_at_least():
    check_at_least("width", 1, 1)
    with pytest.raises(ConfigError, match=r"^width must be at least 1"):
        check_at_least("width", 0, 1)


def test_dcgan_init():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(64, 64, 4), nn.BatchNorm2d(4096), nn.ConvTranspose2d(8, 8, 3))
    assert init_weights(model, "dcgan") is model
    conv, norm, transpose = model
    assert conv.weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert conv.weight.mean().item() == pytest.approx(0.0, abs=2e-3)
    assert torch.all(conv.bias == 0)
    assert torch.all(transpose.bias == 0)
    assert norm.weight.mean().item() == pytest.approx(1.0, abs=2e-3)
    assert norm.weight.std().item() == pytest.approx(0.02, rel=0.1)
    assert torch.all(norm.bias == 0)


def test_orthogonal_init_gives_orthogonal_square_weights():
    layer = init_weights(nn.Linear(32, 32), "orthogonal")
    weight = layer.weight.detach()
    torch.testing.assert_close(weight @ weight.T, torch.eye(32), atol=1e-5, rtol=0)
    assert torch.all(layer.bias == 0)


def test_xavier_and_kaiming_scales():
    torch.manual_seed(0)
    xavier = init_weights(nn.Linear(400, 400), "xavier").weight
    # xavier_uniform: U(-a, a), a = sqrt(6 / (fan_in + fan_out)), std = a / sqrt(3)
    assert xavier.std().item() == pytest.approx((6 / 800) ** 0.5 / 3**0.5, rel=0.05)
    kaiming = init_weights(nn.Linear(400, 400), "kaiming").weight
    assert kaiming.std().item() == pytest.approx((2 / 400) ** 0.5, rel=0.05)


def test_default_init_leaves_weights_alone():
    layer = nn.Linear(8, 8)
    before = layer.weight.detach().clone()
    init_weights(layer, "default")
    assert torch.equal(layer.weight, before)


def test_init_keeps_a_deliberate_initial_bias():
    layer = nn.Conv2d(4, 4, 1)
    layer.initial_bias = -2.0
    init_weights(layer, "xavier")
    assert torch.all(layer.bias == -2.0)


def test_init_reaches_spectral_normed_weights():
    layer = nn.utils.parametrizations.spectral_norm(nn.Linear(64, 64))
    init_weights(layer, "dcgan")
    original = layer.parametrizations.weight.original
    assert original.std().item() == pytest.approx(0.02, rel=0.1)
