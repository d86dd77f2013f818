"""LabelSmoothing and LabelFlipping: the targets the engine hands its loss, inside real fits."""

import math
from functools import partial

import pytest
import torch

from gan_tricks.errors import ConfigError
from gan_tricks.functional import get_loss
from gan_tricks.testing import fit_briefly, tiny_gan_module
from gan_tricks.tricks.base import Trick
from gan_tricks.tricks.labels import LabelFlipping, LabelSmoothing

BATCH = 64


# 64 targets per D step: enough for the statistics of smoothed and flipped labels below.
fit = partial(fit_briefly, batch_size=BATCH)


def context():
    """A step's context, for calling a trick's hook directly."""
    return tiny_gan_module().engine.context


class TargetRecorder(Trick):
    """Runs after every other trick and records the targets and logits D's loss got."""

    order = 50

    def __init__(self):
        self.real, self.fake, self.logits = [], [], []

    def targets(self, ctx, real_target, fake_target):
        self.real.append(real_target.clone())
        self.fake.append(fake_target.clone())
        return real_target, fake_target

    def d_penalty(self, ctx):
        self.logits.append((ctx.real_logits.detach(), ctx.fake_logits.detach()))


def test_smoothed_targets_reach_the_loss_in_their_ranges():
    recorder = TargetRecorder()
    module = tiny_gan_module(tricks=[recorder, LabelSmoothing()])  # recorder listed first
    fit(module, steps=3)
    real, fake = torch.cat(recorder.real), torch.cat(recorder.fake)
    assert len(real) == len(fake) == 3 * BATCH
    assert real.min() >= 0.7 and real.max() < 1.2
    assert fake.min() >= 0.0 and fake.max() < 0.3
    # Fresh draws per element and per step; the means sit near the ranges' middles
    # (standard error 0.5 / sqrt(12 * 192) ~ 0.01).
    assert len(real.unique()) == len(real)
    assert real.mean().item() == pytest.approx(0.95, abs=0.05)
    assert fake.mean().item() == pytest.approx(0.15, abs=0.05)
    # The last D loss was computed from exactly these targets.
    real_logits, fake_logits = recorder.logits[-1]
    expected = get_loss("nonsaturating").d_loss(
        real_logits, fake_logits, recorder.real[-1], recorder.fake[-1]
    )
    assert module.signals.d_loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_one_sided_smoothing_sets_real_to_the_constant_and_keeps_fake_at_zero():
    recorder = TargetRecorder()
    fit(tiny_gan_module(tricks=[LabelSmoothing(one_sided=True), recorder]), steps=2)
    assert all(torch.all(r == 0.9) for r in recorder.real)
    assert all(torch.all(f == 0.0) for f in recorder.fake)
    real, _ = LabelSmoothing(one_sided=True, one_sided_real=0.8).targets(
        context(), torch.ones(3), torch.zeros(3)
    )
    assert torch.equal(real, torch.full((3,), 0.8))


def test_custom_ranges_and_per_element_targets_for_several_discriminators():
    trick = LabelSmoothing(real_range=(0.8, 1.0), fake_range=(0.0, 0.1))
    real, fake = trick.targets(context(), torch.ones(4096, 3), torch.zeros(4096, 3))
    assert real.shape == fake.shape == (4096, 3)
    assert real.min() >= 0.8 and real.max() < 1.0 and fake.min() >= 0 and fake.max() < 0.1
    assert real.mean().item() == pytest.approx(0.9, abs=5e-3)


def test_flipping_runs_after_smoothing_whatever_the_recipe_order():
    torch.manual_seed(0)
    recorder = TargetRecorder()
    # Flipping listed first: if it ran first, smoothing would overwrite every flip.
    fit(tiny_gan_module(tricks=[LabelFlipping(p=0.5), LabelSmoothing(), recorder]), steps=3)
    real, fake = torch.cat(recorder.real), torch.cat(recorder.fake)
    real_kept, real_flipped = real[real >= 0.7], real[real < 0.7]
    assert len(real_flipped) > 0 and len(real_kept) > 0
    assert real_kept.max() < 1.2
    assert real_flipped.min() > -0.2 and real_flipped.max() <= 0.3  # 1 - [0.7, 1.2)
    fake_kept, fake_flipped = fake[fake < 0.5], fake[fake >= 0.5]
    assert len(fake_flipped) > 0 and fake_kept.min() >= 0.0 and fake_kept.max() < 0.3
    assert fake_flipped.min() > 0.7 and fake_flipped.max() <= 1.0  # 1 - [0, 0.3)


def test_flip_rate_of_the_trick_over_many_targets():
    torch.manual_seed(1)
    p, n = 0.05, 100_000
    real, fake = LabelFlipping(p=p).targets(context(), torch.ones(n), torch.zeros(n))
    tolerance = 5 * math.sqrt(p * (1 - p) / n)
    assert (real == 0).float().mean().item() == pytest.approx(p, abs=tolerance)
    assert (fake == 1).float().mean().item() == pytest.approx(p, abs=tolerance)
    # Real and fake flips are drawn independently.
    both = ((real == 0) & (fake == 1)).float().mean().item()
    assert both == pytest.approx(p * p, abs=5 * math.sqrt(p * p / n))


def test_flipping_alone_in_a_fit_gives_hard_flipped_targets():
    torch.manual_seed(2)
    recorder = TargetRecorder()
    fit(tiny_gan_module(tricks=[LabelFlipping(p=0.2), recorder]), steps=2)
    real = torch.cat(recorder.real)
    assert set(real.unique().tolist()) == {0.0, 1.0}


@pytest.mark.parametrize("trick", [LabelSmoothing(), LabelFlipping()])
@pytest.mark.parametrize("loss", ["wasserstein", "hinge"])
def test_losses_without_targets_are_rejected(trick, loss):
    with pytest.raises(
        ConfigError, match=f"the {loss} loss ignores them; set model.loss to one of"
    ):
        fit(tiny_gan_module(loss=loss, tricks=[trick]), steps=1)


@pytest.mark.parametrize("loss", ["least_squares", "relativistic_average", "minimax"])
def test_losses_with_targets_are_accepted(loss):
    fit(tiny_gan_module(loss=loss, tricks=[LabelSmoothing(), LabelFlipping()]), steps=1)


def test_bad_settings_are_config_errors():
    with pytest.raises(ConfigError, match="low <= high"):
        LabelSmoothing(real_range=(1.2, 0.7))
    with pytest.raises(ConfigError, match="must lie above fake_range"):
        LabelSmoothing(real_range=(0.2, 1.0), fake_range=(0.0, 0.3))
    with pytest.raises(ConfigError, match=r"one_sided_real must be in \(0, 1\]"):
        LabelSmoothing(one_sided=True, one_sided_real=1.5)
    for p in (-0.1, 0.6):
        with pytest.raises(ConfigError, match=r"p must be in \[0, 0.5\]"):
            LabelFlipping(p=p)


def test_label_tricks_have_no_state():
    assert LabelSmoothing().state_dict() == {} and LabelFlipping().state_dict() == {}
