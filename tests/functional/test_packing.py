"""PacGAN's packing: shapes, sample order, the trimmed remainder."""

import pytest
import torch

from gan_tricks.errors import ConfigError
from gan_tricks.functional.packing import pack, unpack


def test_points_are_packed_side_by_side_in_order():
    x = torch.arange(8.0).reshape(4, 2)
    assert torch.equal(pack(x, 2), torch.tensor([[0.0, 1, 2, 3], [4, 5, 6, 7]]))
    assert torch.equal(pack(x, 4), torch.arange(8.0).reshape(1, 8))


def test_images_are_packed_along_channels():
    x = torch.randn(6, 3, 4, 4)
    packed = pack(x, 3)
    assert packed.shape == (2, 9, 4, 4)
    for k in range(2):
        for j in range(3):
            assert torch.equal(packed[k, 3 * j : 3 * j + 3], x[3 * k + j])


@pytest.mark.parametrize("shape", [(12, 2), (12, 1, 8, 8), (12, 3, 4, 4)])
@pytest.mark.parametrize("m", [1, 2, 3, 4])
def test_unpack_inverts_pack(shape, m):
    x = torch.randn(shape)
    packed = pack(x, m)
    assert packed.shape == (12 // m, m * shape[1], *shape[2:])
    assert torch.equal(unpack(packed, m), x)


def test_the_remainder_is_dropped():
    x = torch.arange(14.0).reshape(7, 2)
    packed = pack(x, 3)
    assert packed.shape == (2, 6)
    assert torch.equal(unpack(packed, 3), x[:6])


def test_m_one_is_a_no_op_and_bad_values_raise():
    x = torch.randn(5, 2)
    assert pack(x, 1) is x
    for m in (0, -2, 1.5, True):
        with pytest.raises(ConfigError, match="integer >= 1"):
            pack(x, m)
    with pytest.raises(ConfigError, match="batch_size"):
        pack(x, 6)
    with pytest.raises(ConfigError, match="unpack"):
        unpack(torch.randn(4, 3), 2)
