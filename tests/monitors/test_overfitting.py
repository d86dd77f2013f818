"""DiscriminatorOverfitting, and GANModule.judge that it reads D through."""

import pytest
import torch

from gan_tricks.data import Digits
from gan_tricks.errors import ConfigError
from gan_tricks.monitors import DiscriminatorOverfitting, sign_mean
from gan_tricks.testing import fit_briefly, tiny_gan_module, tiny_image_gan_module
from gan_tricks.tricks import Packing


def test_sign_mean_is_adas_heuristic():
    assert sign_mean(torch.tensor([3.0, -1.0, 2.0, 0.5])) == 0.5
    assert sign_mean(torch.tensor([-1.0, -2.0])) == -1.0


def test_judge_packs_drops_an_incomplete_pack_and_leaves_batchnorm_alone(tmp_path):
    module = tiny_gan_module(d_options={"in_dim": 4, "norm": "batch"}, tricks=[Packing(2)])
    fit_briefly(module, 2, default_root_dir=tmp_path)
    norm = next(m for m in module.discriminator.modules() if isinstance(m, torch.nn.BatchNorm1d))
    stats = norm.running_mean.clone()
    points = torch.randn(9, 2)
    logits = module.judge(points)
    assert logits.shape == (4,)
    module.discriminator.eval()
    assert torch.allclose(logits, module.discriminator(points[:8].reshape(4, 4)).flatten())
    assert torch.equal(norm.running_mean, stats)


def test_judge_skips_random_transforms():
    module = tiny_gan_module()
    points = torch.randn(16, 2)
    assert torch.equal(module.judge(points), module.judge(points))


def test_overfitting_needs_a_gap_on_patience_checks():
    detector = DiscriminatorOverfitting(patience=2, warmup=0)
    overfit = {"r_train": 0.9, "r_heldout": 0.3}
    assert detector.observe(0, overfit) is None
    assert detector.observe(1, {"d_loss": 1.0}) is None  # not a checking step
    alarm = detector.observe(2, overfit)
    assert alarm.signals == overfit and "95% of training images real but 65%" in alarm.message
    confident = DiscriminatorOverfitting(patience=2, warmup=0)  # D sure of all reals: no gap
    assert not any(confident.observe(s, {"r_train": 0.9, "r_heldout": 0.8}) for s in range(5))
    unsure = DiscriminatorOverfitting(patience=2, warmup=0)  # a gap, but D is unsure of both
    assert not any(unsure.observe(s, {"r_train": 0.2, "r_heldout": -0.4}) for s in range(5))


@pytest.mark.parametrize("kwargs", [{"min_gap": 0}, {"every": 0}, {"patience": 0}])
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ConfigError):
        DiscriminatorOverfitting(**kwargs)


def test_a_fit_reads_d_on_training_and_heldout_digits(tmp_path):
    data = Digits(image_size=8, batch_size=32, holdout=0.2)
    readings = []

    class Recording(DiscriminatorOverfitting):
        def check(self, step, signals):
            if "r_train" in signals:
                readings.append((step, signals["r_train"], signals["r_heldout"]))
            return super().check(step, signals)

    module = tiny_image_gan_module(detectors=[Recording(every=2, warmup=0)])
    fit_briefly(module, 6, data=data, default_root_dir=tmp_path)
    assert [step for step, _, _ in readings] == [2, 4, 6]
    assert all(-1 <= r <= 1 for _, train, heldout in readings for r in (train, heldout))


def test_data_without_a_heldout_set_is_refused_in_one_sentence(tmp_path):
    with pytest.raises(ConfigError, match="needs held-out real data"):
        module = tiny_gan_module(detectors=[DiscriminatorOverfitting()])
        fit_briefly(module, 1, default_root_dir=tmp_path)
