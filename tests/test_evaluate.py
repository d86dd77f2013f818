"""evaluate_samples, which ``gan-tricks evaluate CKPT`` prints: each data set gets its protocol."""

import math

import pytest
import torch

from gan_tricks.data import GANDataModule
from gan_tricks.data.digits import Digits, StackedDigits
from gan_tricks.data.toy2d import Toy2D
from gan_tricks.errors import ConfigError
from gan_tricks.functional.latent import Latent
from gan_tricks.lightning import GANModule
from gan_tricks.metrics.digits import stacked_digits_metrics
from gan_tricks.models.dcgan import DCGANDiscriminator, DCGANGenerator
from gan_tricks.run import evaluate_samples

DIGIT_KEYS = {"modes_covered", "num_modes", "reverse_kl", "num_samples", "unreadable"}


def tiny_dcgan(channels: int) -> GANModule:
    torch.manual_seed(0)
    return GANModule(
        generator=DCGANGenerator(latent_dim=8, image_size=16, channels=channels, width=4),
        discriminator=DCGANDiscriminator(image_size=16, channels=channels, width=4),
        latent=Latent(dim=8),
    )


class RealSampler:
    """Stands in for a perfect generator: ``sample`` returns fresh real data."""

    def __init__(self, datamodule) -> None:
        self.datamodule = datamodule

    def sample(self, n: int, seed: int | None = None) -> torch.Tensor:
        return self.datamodule.real_samples(n, seed=1000 + (seed or 0))


def test_untrained_dcgan_on_stacked_digits():
    datamodule = StackedDigits(image_size=16, num_samples=64)
    metrics = evaluate_samples(tiny_dcgan(3), datamodule, num_samples=300, seed=3)
    assert metrics.keys() >= DIGIT_KEYS
    assert metrics["data"] == "StackedDigits" and metrics["seed"] == 3
    assert metrics["num_samples"] == 300 and metrics["num_modes"] == 1000
    assert 1 <= metrics["modes_covered"] <= 300 and metrics["unreadable"] == 0
    assert 0 <= metrics["reverse_kl"] <= math.log(1000)
    # An untrained generator's images differ by little next to real digits.
    assert 0 < metrics["diversity_ratio"] < 1


def test_stacked_digits_default_to_the_protocol_count():
    assert StackedDigits.eval_samples == 26_000  # BENCHMARKS.md section 2
    data = StackedDigits(image_size=16, num_samples=64)
    data.eval_samples = 200  # so the test stays fast: the default must come from the data
    metrics = evaluate_samples(tiny_dcgan(3), data)
    assert metrics["num_samples"] == 200


def test_perfect_stacked_samples_score_like_real_data():
    datamodule = StackedDigits(image_size=16, num_samples=64)
    metrics = evaluate_samples(RealSampler(datamodule), datamodule, num_samples=3000)
    expected = stacked_digits_metrics(datamodule.real_samples(3000, seed=1000))
    for key in ("modes_covered", "reverse_kl", "num_samples"):
        assert metrics[key] == expected[key]
    # 3,000 uniform draws over 1,000 modes hit 1000 * (1 - e^-3) = 950 of them on average.
    assert 930 <= metrics["modes_covered"] <= 970
    assert metrics["diversity_ratio"] == pytest.approx(1.0, abs=0.05)


def test_digits_report_ten_classes():
    datamodule = Digits(image_size=16)
    metrics = evaluate_samples(tiny_dcgan(1), datamodule, num_samples=100)
    assert metrics.keys() >= DIGIT_KEYS and metrics["num_modes"] == 10
    assert 1 <= metrics["modes_covered"] <= 10 and metrics["num_samples"] == 100
    perfect = evaluate_samples(RealSampler(datamodule), datamodule)
    assert perfect["num_samples"] == Digits.eval_samples == 2048
    assert perfect["modes_covered"] == 10 and perfect["reverse_kl"] < 0.02


def test_mixtures_keep_their_protocol():
    datamodule = Toy2D(name="ring8")
    metrics = evaluate_samples(RealSampler(datamodule), datamodule)
    assert metrics["num_samples"] == Toy2D.eval_samples == 2500
    assert metrics["modes_covered"] == 8 and "unreadable" not in metrics


def test_digit_images_get_fid_kid_and_manifold_metrics_in_the_digit_feature_space():
    datamodule = Digits(image_size=16)
    untrained = evaluate_samples(tiny_dcgan(1), datamodule, num_samples=600)
    perfect = evaluate_samples(RealSampler(datamodule), datamodule, num_samples=600)
    for metrics in (untrained, perfect):
        assert metrics["feature_space"] == "digits" and metrics["feature_samples"] == 600
        assert metrics["feature_net_accuracy"] >= 0.95
    assert perfect["fid"] < 15 < 10 * perfect["fid"] < untrained["fid"]
    assert perfect["precision"] > 0.9 and perfect["recall"] > 0.9
    assert untrained["precision"] < 0.1 and untrained["coverage"] < 0.1
    # Stacked digits read one channel at a time, through the same network (192 features: with
    # 300 samples FID's bias is large, so only the ranking is asserted).
    stacked = StackedDigits(image_size=16, num_samples=64)
    real = evaluate_samples(RealSampler(stacked), stacked, num_samples=300)
    fake = evaluate_samples(tiny_dcgan(3), stacked, num_samples=300)
    assert 5 * real["fid"] < fake["fid"] and real["coverage"] > 0.8 > 0.1 > fake["coverage"]


class UniformSquares(GANDataModule):
    """A user's own data: 4 x 4 grey squares, each of one uniform shade."""

    sample_shape = (1, 4, 4)

    def real_samples(self, n, seed=0):
        shades = torch.rand(n, 1, 1, 1, generator=torch.Generator().manual_seed(seed))
        return (2 * shades - 1).expand(n, 1, 4, 4).clone()


class CountedSquares(UniformSquares):
    """The same data with a protocol of its own."""

    eval_samples = 50

    def evaluate(self, samples, seed=0, feature_metrics=True, inception_weights=None):
        return {"num_samples": len(samples), "uniform": float(samples.std(dim=(1, 2, 3)).max())}


def test_a_data_module_of_ones_own_gets_the_default_protocol_or_its_own():
    perfect = evaluate_samples(RealSampler(UniformSquares()), UniformSquares(), num_samples=200)
    assert perfect["data"] == "UniformSquares" and perfect["num_samples"] == 200
    assert perfect["diversity_ratio"] == pytest.approx(1.0, abs=0.15)
    with pytest.raises(ConfigError, match="UniformSquares holds no samples out of training"):
        UniformSquares().heldout_samples(4)
    own = evaluate_samples(RealSampler(CountedSquares()), CountedSquares())
    assert own["num_samples"] == 50 and own["uniform"] == 0.0 and "diversity_ratio" not in own


def test_a_plain_lightning_data_module_gets_the_sample_count_alone():
    import pytorch_lightning as pl

    metrics = evaluate_samples(tiny_dcgan(1), pl.LightningDataModule(), num_samples=10)
    assert metrics["num_samples"] == 10 and "diversity_ratio" not in metrics
