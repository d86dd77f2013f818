from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from gan_tricks.errors import ConfigError
from gan_tricks.layers import (
    BLOCK_TYPES,
    HIGHWAY_GATE_BIAS,
    SHORTCUTS,
    DiscriminatorBlock,
    GeneratorBlock,
    ZeroPadChannels,
    init_weights,
)

WIDTH_PAIRS = [(4, 4), (4, 6), (6, 4)]


def last_conv(block: nn.Module) -> nn.Conv2d:
    return [m for m in block.main if isinstance(m, nn.Conv2d)][-1]


def zero_main_path(block: nn.Module) -> None:
    with torch.no_grad():
        last_conv(block).weight.zero_()
        last_conv(block).bias.zero_()


def count_1x1_convs(module: nn.Module) -> int:
    return sum(isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) for m in module.modules())


@pytest.mark.parametrize(
    ("block_type", "shortcut", "widths", "resample"),
    list(itertools.product(BLOCK_TYPES, SHORTCUTS, WIDTH_PAIRS, [True, False])),
)
def test_generator_block_shapes(block_type, shortcut, widths, resample):
    in_channels, out_channels = widths
    block = GeneratorBlock(
        in_channels, out_channels, upsample=resample, block_type=block_type, shortcut=shortcut
    )
    size = 8 if resample else 4
    assert block(torch.randn(2, in_channels, 4, 4)).shape == (2, out_channels, size, size)


@pytest.mark.parametrize(
    ("block_type", "shortcut", "widths", "resample", "first"),
    list(itertools.product(BLOCK_TYPES, SHORTCUTS, WIDTH_PAIRS, [True, False], [True, False])),
)
def test_discriminator_block_shapes(block_type, shortcut, widths, resample, first):
    in_channels, out_channels = widths
    block = DiscriminatorBlock(
        in_channels,
        out_channels,
        downsample=resample,
        block_type=block_type,
        shortcut=shortcut,
        first=first,
    )
    size = 4 if resample else 8
    assert block(torch.randn(2, in_channels, 8, 8)).shape == (2, out_channels, size, size)


def test_zero_pad_channels_grows_with_zeros_and_shrinks_by_keeping_first_channels():
    x = torch.randn(2, 3, 4, 4)
    grown = ZeroPadChannels(3, 5)(x)
    assert torch.equal(grown[:, :3], x)
    assert torch.all(grown[:, 3:] == 0)
    assert torch.equal(ZeroPadChannels(3, 2)(x), x[:, :2])


@pytest.mark.parametrize(("in_channels", "out_channels"), [(3, 5), (5, 3), (4, 4)])
def test_zero_pad_residual_with_zeroed_main_path_returns_padded_input(in_channels, out_channels):
    x = torch.randn(2, in_channels, 4, 4)
    expected = torch.zeros(2, out_channels, 4, 4)
    kept = min(in_channels, out_channels)
    expected[:, :kept] = x[:, :kept]

    for block in (
        GeneratorBlock(in_channels, out_channels, upsample=False, shortcut="zero_pad"),
        DiscriminatorBlock(in_channels, out_channels, downsample=False, shortcut="zero_pad"),
    ):
        zero_main_path(block)
        assert count_1x1_convs(block) == 0
        torch.testing.assert_close(block(x), expected, atol=0, rtol=0)


def test_zero_pad_skip_is_resampled():
    x = torch.randn(2, 3, 4, 4)
    generator_block = GeneratorBlock(3, 5, shortcut="zero_pad")
    zero_main_path(generator_block)
    up = generator_block(x)
    assert torch.equal(up[:, :3], nn.functional.interpolate(x, scale_factor=2, mode="nearest"))
    assert torch.all(up[:, 3:] == 0)

    discriminator_block = DiscriminatorBlock(3, 5, shortcut="zero_pad", first=True)
    zero_main_path(discriminator_block)
    down = discriminator_block(x)
    torch.testing.assert_close(down[:, :3], nn.functional.avg_pool2d(x, 2))
    assert torch.all(down[:, 3:] == 0)


@pytest.mark.parametrize("block_class", [GeneratorBlock, DiscriminatorBlock])
def test_projection_shortcuts_count_1x1_convs(block_class):
    assert count_1x1_convs(block_class(4, 4, shortcut="project_when_needed")) == 0
    assert count_1x1_convs(block_class(4, 6, shortcut="project_when_needed")) == 1
    assert count_1x1_convs(block_class(4, 4, shortcut="project_always")) == 1
    assert count_1x1_convs(block_class(4, 6, shortcut="project_always")) == 1
    assert count_1x1_convs(block_class(4, 6, shortcut="zero_pad")) == 0


def test_identity_shortcut_passes_input_through():
    block = GeneratorBlock(4, 4, upsample=False, shortcut="project_when_needed")
    zero_main_path(block)
    x = torch.randn(2, 4, 4, 4)
    torch.testing.assert_close(block(x), x, atol=0, rtol=0)


@pytest.mark.parametrize("block_class", [GeneratorBlock, DiscriminatorBlock])
@pytest.mark.parametrize("shortcut", SHORTCUTS)
def test_plain_block_has_no_skip(block_class, shortcut):
    block = block_class(4, 6, block_type="plain", shortcut=shortcut)
    zero_main_path(block)
    assert count_1x1_convs(block) == 0
    assert torch.all(block(torch.randn(2, 4, 8, 8)) == 0)


def set_gate_bias(block: nn.Module, value: float) -> None:
    gate = next(m for m in block.gate.modules() if isinstance(m, nn.Conv2d))
    with torch.no_grad():
        gate.bias.fill_(value)


@pytest.mark.parametrize("block_class", [GeneratorBlock, DiscriminatorBlock])
def test_highway_gate_switches_between_skip_and_main_path(block_class):
    torch.manual_seed(0)
    block = block_class(4, 6, block_type="highway", shortcut="project_always").eval()
    x = torch.randn(2, 4, 8, 8)
    main_out = block.main(x)
    skip_out = block.skip(x)
    assert not torch.allclose(main_out, skip_out)

    set_gate_bias(block, -1e4)
    torch.testing.assert_close(block(x), skip_out)
    set_gate_bias(block, 1e4)
    torch.testing.assert_close(block(x), main_out)


@pytest.mark.parametrize("block_class", [GeneratorBlock, DiscriminatorBlock])
def test_highway_gate_starts_near_carry_and_survives_init(block_class):
    block = block_class(4, 4, block_type="highway")
    gate = next(m for m in block.gate.modules() if isinstance(m, nn.Conv2d))
    assert HIGHWAY_GATE_BIAS < 0
    assert torch.all(gate.bias == HIGHWAY_GATE_BIAS)
    init_weights(block, "dcgan")
    assert torch.all(gate.bias == HIGHWAY_GATE_BIAS)
    # Every other bias was re-initialized as usual.
    assert all(torch.all(m.bias == 0) for m in block.main if isinstance(m, nn.Conv2d))


def test_non_highway_blocks_have_no_gate():
    assert GeneratorBlock(4, 4, block_type="residual").gate is None
    assert DiscriminatorBlock(4, 4, block_type="plain").skip is None


def test_generator_block_layout():
    block = GeneratorBlock(4, 6, norm="batch", activation="relu")
    kinds = [type(m) for m in block.main]
    assert kinds == [
        nn.BatchNorm2d,
        nn.ReLU,
        nn.Upsample,
        nn.Conv2d,
        nn.BatchNorm2d,
        nn.ReLU,
        nn.Conv2d,
    ]


def test_discriminator_first_block_has_no_activation_before_its_first_conv():
    first = DiscriminatorBlock(3, 6, first=True)
    assert isinstance(first.main[0], nn.Conv2d)
    assert sum(isinstance(m, nn.ReLU) for m in first.main) == 1
    later = DiscriminatorBlock(6, 6)
    assert [type(m) for m in later.main] == [
        nn.Identity,
        nn.ReLU,
        nn.Conv2d,
        nn.Identity,
        nn.ReLU,
        nn.Conv2d,
        nn.AvgPool2d,
    ]


@pytest.mark.parametrize("block_class", [GeneratorBlock, DiscriminatorBlock])
def test_unknown_block_options_raise(block_class):
    with pytest.raises(ConfigError, match="block_type must be one of residual, highway, plain"):
        block_class(4, 4, block_type="dense")
    with pytest.raises(ConfigError, match="shortcut must be one of zero_pad"):
        block_class(4, 4, shortcut="option_a")
