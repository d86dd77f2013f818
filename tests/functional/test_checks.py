"""Reading G's output range and matching it against the real data's range (ganhacks #1)."""

import pytest
import torch
from torch import nn

from gan_tricks.errors import ConfigError
from gan_tricks.functional.checks import check_input_range, output_layer, output_range
from gan_tricks.models import DCGANGenerator, MLPGenerator


@pytest.mark.parametrize(
    ("last", "expected"),
    [
        (nn.Tanh(), (-1.0, 1.0)),
        (nn.Sigmoid(), (0.0, 1.0)),
        (nn.Hardsigmoid(), (0.0, 1.0)),
        (nn.Hardtanh(-2.0, 3.0), (-2.0, 3.0)),
        (nn.ReLU6(), (0.0, 6.0)),
        (nn.Identity(), None),
        (nn.ReLU(), None),
        (nn.Linear(4, 4), None),
    ],
)
def test_output_range_of_the_last_leaf(last, expected):
    generator = nn.Sequential(nn.Linear(4, 4), nn.Sequential(nn.ReLU(), last))
    assert output_layer(generator) is last
    assert output_range(generator) == expected


def test_output_range_of_the_bundled_generators():
    assert output_range(DCGANGenerator(latent_dim=4, image_size=8, channels=1, width=4)) == (
        -1.0,
        1.0,
    )
    assert output_range(MLPGenerator(out_activation="identity")) is None
    assert output_range(MLPGenerator(out_activation="sigmoid")) == (0.0, 1.0)


def spanning(low: float, high: float, shape=(64, 1, 8, 8)) -> torch.Tensor:
    return torch.linspace(low, high, int(torch.tensor(shape).prod())).reshape(shape)


def test_matching_ranges_pass():
    check_input_range(spanning(-1, 1), (-1.0, 1.0), is_image=True)
    check_input_range(spanning(0, 1), (0.0, 1.0), is_image=True)
    check_input_range(spanning(-4, 4, (64, 2)), None, is_image=False)  # points, unbounded G
    check_input_range(spanning(-1.0004, 1.0004), (-1.0, 1.0), is_image=True)  # rounding


def test_data_outside_the_bounded_range_fails():
    with pytest.raises(
        ConfigError,
        match=r"real data spans \[0, 255\] but the generator ends in tanh \(\[-1, 1\]\)",
    ):
        check_input_range(spanning(0, 255), (-1.0, 1.0), is_image=True)
    with pytest.raises(ConfigError, match=r"ends in sigmoid .*scale the data to \[0, 1\]"):
        check_input_range(spanning(-1, 1), (0.0, 1.0), is_image=True)
    with pytest.raises(ConfigError, match=r"a bounded activation \(\[-2, 2\]\)"):
        check_input_range(spanning(-4, 4, (64, 2)), (-2.0, 2.0), is_image=False)


def test_nonnegative_data_under_tanh_fails():
    with pytest.raises(ConfigError, match=r"negative half is never used.*\[-1, 1\]"):
        check_input_range(spanning(0, 1), (-1.0, 1.0), is_image=True)


def test_images_under_an_unbounded_generator_fail():
    with pytest.raises(ConfigError, match=r"output is unbounded; end the generator in tanh"):
        check_input_range(spanning(-1, 1), None, is_image=True)
    with pytest.raises(ConfigError, match=r"scale the images to \[-1, 1\] and end the generator"):
        check_input_range(spanning(0, 255), None, is_image=True)


def test_every_message_is_one_sentence():
    for real, bounds, is_image in [
        (spanning(0, 255), (-1.0, 1.0), True),
        (spanning(0, 1), (-1.0, 1.0), True),
        (spanning(-1, 1), None, True),
    ]:
        with pytest.raises(ConfigError) as error:
            check_input_range(real, bounds, is_image)
        message = str(error.value)
        assert message.endswith(".") and message.count(". ") == 0 and "\n" not in message
