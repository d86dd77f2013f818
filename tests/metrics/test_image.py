"""FID, KID, precision / recall, density / coverage, and the digit feature space they use."""

import pytest
import torch

from gan_tricks.data import Digits
from gan_tricks.errors import ConfigError
from gan_tricks.metrics.features import DigitFeatures, digit_features, train_digit_features
from gan_tricks.metrics.image import image_metrics, manifold_metrics


def grid(n: int = 10, spacing: float = 1.0) -> torch.Tensor:
    xs = torch.arange(n, dtype=torch.float64) * spacing
    return torch.cartesian_prod(xs, xs)


def slow_manifold_metrics(real, fake, k):
    """The definitions of Kynkäänniemi et al. 2019 and Naeem et al. 2020, one loop at a time."""

    def radius(points, i):
        distances = sorted(float((points[i] - points[j]).norm()) for j in range(len(points)))
        return distances[k]  # distances[0] is the point itself

    real_r = [radius(real, i) for i in range(len(real))]
    fake_r = [radius(fake, i) for i in range(len(fake))]
    near = [[float((f - r).norm()) <= real_r[j] for j, r in enumerate(real)] for f in fake]
    return {
        "precision": sum(any(row) for row in near) / len(fake),
        "recall": sum(
            any(float((r - f).norm()) <= fake_r[i] for i, f in enumerate(fake)) for r in real
        )
        / len(real),
        "density": sum(sum(row) for row in near) / (k * len(fake)),
        "coverage": sum(any(row[j] for row in near) for j in range(len(real))) / len(real),
    }


def test_manifold_metrics_match_the_definitions():
    generator = torch.Generator().manual_seed(0)
    real = torch.randn(40, 3, generator=generator, dtype=torch.float64)
    fake = 1.3 * torch.randn(30, 3, generator=generator, dtype=torch.float64) + 0.4
    fast, slow = manifold_metrics(real, fake, k=4), slow_manifold_metrics(real, fake, k=4)
    assert fast == pytest.approx(slow)
    assert 0 < fast["precision"] < 1 and 0 < fast["coverage"] < 1  # not a trivial case


def test_manifold_metrics_of_a_set_against_itself_are_perfect():
    points = grid()
    metrics = manifold_metrics(points, points.clone(), k=3)
    assert (metrics["precision"], metrics["recall"], metrics["coverage"]) == (1.0, 1.0, 1.0)


def test_manifold_metrics_of_far_away_samples_are_zero():
    metrics = manifold_metrics(grid(), grid() + 100.0, k=3)
    assert metrics == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_collapse_keeps_precision_and_loses_recall_and_coverage():
    real = grid()
    collapsed = real[:10].repeat(10, 1) + 1e-3 * torch.randn(100, 2, dtype=torch.float64)
    metrics = manifold_metrics(real, collapsed, k=3)
    assert metrics["precision"] == 1.0  # every fake is a realistic sample
    assert metrics["coverage"] <= 0.2  # but only the first row of the grid is covered
    assert metrics["recall"] <= 0.2


def test_manifold_metrics_need_more_samples_than_k():
    with pytest.raises(ConfigError, match="more than k = 5"):
        manifold_metrics(grid(2), grid(2), k=5)


@pytest.fixture(scope="module")
def network() -> DigitFeatures:
    return digit_features(channels=1)


def test_the_digit_feature_network_reads_digits_well(network):
    assert network.held_out_accuracy >= 0.95
    assert network.num_features == 64 and not network.training
    assert all(not p.requires_grad for p in network.parameters())
    stacked = digit_features(channels=3)  # the same weights, one channel at a time
    images = Digits(image_size=16).images[:6]
    three = torch.cat([images, images.flip(0), images], dim=1)
    features = stacked(three)
    assert features.shape == (6, 192)
    assert torch.equal(features[:, :64], network(images))
    assert torch.equal(features[:, 64:128], network(images.flip(0)))


def test_feature_training_is_reproducible_and_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    state = torch.get_rng_state()
    first, second = train_digit_features(seed=4, epochs=1), train_digit_features(seed=4, epochs=1)
    assert torch.equal(torch.get_rng_state(), state)
    for name, value in first.state_dict().items():
        assert torch.equal(value, second.state_dict()[name]), name
    other = train_digit_features(seed=5, epochs=1)
    assert not torch.equal(other.head.weight, first.head.weight)


def test_image_metrics_rank_real_blurred_and_collapsed_digits(network):
    images = Digits(image_size=16).images
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
    real, other_real = images[order[:800]], images[order[800:1600]]
    same = image_metrics(real, other_real, network)
    blurred = image_metrics(real, torch.nn.functional.avg_pool2d(other_real, 3, 1, 1), network)
    collapsed = image_metrics(real, other_real[:8].repeat(100, 1, 1, 1), network)

    assert same["fid"] < 10 and same["precision"] > 0.9 and same["recall"] > 0.9
    assert same["fid"] < blurred["fid"] < collapsed["fid"]
    assert same["kid"] < blurred["kid"] < collapsed["kid"]
    assert collapsed["precision"] > 0.9 and collapsed["recall"] < 0.05
    assert collapsed["coverage"] < 0.1 < same["coverage"]


def test_image_metrics_refuse_nan_images(network):
    images = Digits(image_size=16).images[:50]
    broken = images.clone()
    broken[0, 0, 0, 0] = float("nan")
    with pytest.raises(ConfigError, match="NaN"):
        image_metrics(images, broken, network)


def test_inception_features_need_their_weights_on_disk(tmp_path):
    from gan_tricks.metrics.features import InceptionFeatures

    with pytest.raises(ConfigError, match="the Inception weights .* do not exist"):
        InceptionFeatures(tmp_path / "pt_inception.pth")
    weights = tmp_path / "weights.pth"
    weights.write_bytes(b"not weights")
    try:
        import torch_fidelity  # noqa: F401
    except ModuleNotFoundError:  # this machine: torchmetrics' Inception needs torch-fidelity
        with pytest.raises(ConfigError, match="pip install torch-fidelity"):
            InceptionFeatures(weights)
    else:  # with torch-fidelity installed, a broken file fails to load
        with pytest.raises(Exception):  # noqa: B017
            InceptionFeatures(weights)
