import math

import pytest
import torch
import torch.nn.functional as F
from sklearn.model_selection import train_test_split

from gan_tricks.data.digits import (
    Digits,
    load_digit_images,
    make_stacked_digits,
    stacked_mode_ids,
)
from gan_tricks.errors import ConfigError
from gan_tricks.metrics.digits import (
    UNREADABLE,
    classify_digits,
    digit_classifier,
    digits_metrics,
    fit_digit_classifier,
    mode_coverage,
    sampling_floor_kl,
    stacked_digits_metrics,
)


def first_image_of_each_class(image_size: int = 16) -> torch.Tensor:
    """(10, 1, S, S): for each class, a digit the classifier reads correctly."""
    images, labels = load_digit_images(image_size)
    readable = classify_digits(images) == labels
    return torch.stack([images[readable & (labels == c)][0] for c in range(10)])


def stack(exemplars: torch.Tensor, triples: list[tuple[int, int, int]]) -> torch.Tensor:
    return torch.stack([exemplars[list(t), 0] for t in triples])


def test_held_out_accuracy_at_every_image_size():
    images, labels = load_digit_images(8)
    train, test = train_test_split(
        torch.arange(len(labels)), test_size=0.3, stratify=labels, random_state=0
    )
    classifier = fit_digit_classifier(images[train], labels[train])
    for size in (8, 16, 32):
        sized, _ = load_digit_images(size)
        accuracy = (classify_digits(sized[test], classifier) == labels[test]).double().mean()
        # Measured 0.987 to 0.994 on this split; 5-fold mean 0.989.
        assert accuracy > 0.98, size


def test_upsample_then_area_downsample_is_a_mild_blur():
    # Bilinear x2 then 2x2 averaging gives 3/4 of a pixel plus 1/8 of each neighbour per axis
    # (edge pixels are replicated): not the identity, which is why accuracy is checked above.
    native, _ = load_digit_images(8)
    padded = F.pad(native, (1, 1, 1, 1), mode="replicate")
    kernel_1d = torch.tensor([0.125, 0.75, 0.125])
    blurred = F.conv2d(padded, torch.outer(kernel_1d, kernel_1d)[None, None])
    for size in (16, 32):
        round_trip = F.adaptive_avg_pool2d(load_digit_images(size)[0], 8)
        torch.testing.assert_close(round_trip, blurred, atol=1e-5, rtol=0)


def test_classifier_is_cached_and_reads_its_training_digits():
    assert digit_classifier() is digit_classifier()
    images, labels = load_digit_images(16)
    assert (classify_digits(images) == labels).double().mean() > 0.995
    # (N, H, W) is accepted as one channel.
    torch.testing.assert_close(classify_digits(images[:20, 0]), classify_digits(images[:20]))


def test_hand_made_distribution_has_known_kl():
    exemplars = first_image_of_each_class()
    triples = [(1, 2, 3)] * 3 + [(4, 5, 6)]
    metrics = stacked_digits_metrics(stack(exemplars, triples))
    assert metrics["modes_covered"] == 2 and metrics["num_modes"] == 1000
    expected = 0.75 * math.log(0.75 * 1000) + 0.25 * math.log(0.25 * 1000)
    assert metrics["reverse_kl"] == pytest.approx(expected)
    assert metrics["num_samples"] == 4 and metrics["unreadable"] == 0


def test_channel_order_gives_distinct_modes():
    exemplars = first_image_of_each_class()
    triples = [(1, 2, 3), (3, 2, 1), (2, 1, 3)]
    metrics = stacked_digits_metrics(stack(exemplars, triples))
    assert metrics["modes_covered"] == 3
    assert metrics["reverse_kl"] == pytest.approx(math.log(1000 / 3))


def test_total_collapse_gives_one_mode_and_log_1000():
    exemplars = first_image_of_each_class()
    metrics = stacked_digits_metrics(stack(exemplars, [(7, 0, 9)] * 50))
    assert metrics["modes_covered"] == 1
    assert metrics["reverse_kl"] == pytest.approx(math.log(1000))


def test_real_stacked_digits_reach_the_sampling_floor():
    images, labels = make_stacked_digits(26_000, 16, torch.Generator().manual_seed(0))
    metrics = stacked_digits_metrics(images)
    truth = mode_coverage(stacked_mode_ids(labels), 1000)
    # Measured: 1,000 modes and KL 0.0195 (0.0195 from the true labels), floor 0.0192.
    assert metrics["modes_covered"] >= 998
    assert metrics["reverse_kl"] == pytest.approx(truth["reverse_kl"], abs=0.002)
    assert metrics["reverse_kl"] == pytest.approx(sampling_floor_kl(26_000, 1000), abs=0.005)


def test_real_digits_cover_ten_classes():
    digits = Digits(image_size=16)
    metrics = digits_metrics(digits.images)
    truth = mode_coverage(digits.labels, 10)
    assert metrics["modes_covered"] == 10 and metrics["num_modes"] == 10
    # The bundled classes hold 174 to 183 digits each: a tiny KL from uniform.
    assert metrics["reverse_kl"] == pytest.approx(truth["reverse_kl"], abs=1e-4)
    assert 0 < truth["reverse_kl"] < 1e-3


def test_floor_matches_simulated_uniform_samples():
    generator = torch.Generator().manual_seed(0)
    draws = [
        mode_coverage(torch.randint(1000, (26_000,), generator=generator), 1000)["reverse_kl"]
        for _ in range(20)
    ]
    assert sum(draws) / len(draws) == pytest.approx(sampling_floor_kl(26_000, 1000), rel=0.05)


def test_non_finite_samples_are_unreadable():
    exemplars = first_image_of_each_class()
    samples = stack(exemplars, [(1, 1, 1), (2, 2, 2), (3, 3, 3)])
    samples[2, 1, 4, 4] = float("nan")
    assert classify_digits(samples[2, 1:2][None])[0] == UNREADABLE
    metrics = stacked_digits_metrics(samples)
    assert metrics["unreadable"] == 1 and metrics["num_samples"] == 3
    assert metrics["modes_covered"] == 2
    assert metrics["reverse_kl"] == pytest.approx(math.log(500))
    samples[:] = float("inf")
    assert stacked_digits_metrics(samples)["reverse_kl"] is None


def test_shape_and_mode_errors():
    with pytest.raises(ConfigError, match="one-channel"):
        classify_digits(torch.zeros(2, 3, 16, 16))
    with pytest.raises(ConfigError, match=r"\(N, 3, H, W\)"):
        stacked_digits_metrics(torch.zeros(2, 1, 16, 16))
    with pytest.raises(ConfigError, match="num_modes"):
        mode_coverage(torch.tensor([0, 12]), 10)
