"""GradientPenalty and LeCam: their weights, lazy rhythm, state, conflicts and a real fit."""

import pytest
import torch
from torch import nn

from gan_tricks.engine import Networks, StepContext
from gan_tricks.errors import ConfigError
from gan_tricks.functional import Latent, get_loss
from gan_tricks.functional.penalties import PENALTY_KINDS, gradient_penalty
from gan_tricks.testing import SignalHistory, fit_briefly, tiny_gan_module
from gan_tricks.tricks.penalties import GradientPenalty, LeCam


class HalfSquaredNorm(nn.Module):
    def forward(self, x):
        return 0.5 * x.pow(2).sum(dim=1)


def linear_critic(weights) -> nn.Module:
    layer = nn.Linear(len(weights), 1)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([weights]))
    return layer


def d_step(critic, real, fake, real_logits=None, fake_logits=None) -> StepContext:
    """A D step's context over ``critic`` and these batches (logits from the critic)."""
    return StepContext(
        networks=Networks(nn.Identity(), critic),
        latent=Latent(dim=2),
        loss=get_loss("wasserstein"),
        phase="d",
        real=real,
        fake=fake,
        real_logits=critic(real) if real_logits is None else real_logits,
        fake_logits=critic(fake) if fake_logits is None else fake_logits,
    )


def call_penalty(trick, critic, real, fake):
    return trick.d_penalty(d_step(critic, real, fake))


def test_wgan_gp_weight_multiplies_the_penalty():
    real, fake = torch.randn(32, 2), torch.randn(32, 2) + 1
    value = call_penalty(
        GradientPenalty("wgan-gp", weight=10.0), linear_critic([3.0, 4.0]), real, fake
    )
    assert value.item() == pytest.approx(10 * (5 - 1) ** 2, rel=1e-5)


def test_dragans_perturbation_scale_reaches_the_penalty():
    # D(x) = 1/2 ||x||^2 has gradient x: the penalty at perturbed points tells how far they went.
    real = torch.randn(64, 2) * 3
    values = {}
    for scale in (0.5, 0.05):
        torch.manual_seed(0)
        trick = GradientPenalty("dragan", weight=1.0, dragan_scale=scale)
        values[scale] = call_penalty(trick, HalfSquaredNorm(), real, real).item()
        torch.manual_seed(0)
        expected = gradient_penalty(HalfSquaredNorm(), real, kind="dragan", dragan_scale=scale)
        assert values[scale] == pytest.approx(expected.item(), rel=1e-6)
    assert values[0.05] != pytest.approx(values[0.5])
    with pytest.raises(ConfigError, match="dragan_scale"):
        GradientPenalty("dragan", dragan_scale=0.0)


@pytest.mark.parametrize("kind", ["r1", "r2"])
def test_r1_and_r2_weight_is_gamma_with_the_half_applied(kind):
    real, fake = torch.randn(32, 2), torch.randn(32, 2) + 1
    value = call_penalty(GradientPenalty(kind, weight=0.2), HalfSquaredNorm(), real, fake)
    batch = real if kind == "r1" else fake
    assert value.item() == pytest.approx(0.2 / 2 * batch.pow(2).sum(1).mean().item(), rel=1e-5)


def test_lazy_penalty_runs_every_k_steps_times_k():
    trick = GradientPenalty("wgan-gp", weight=10.0, every=4)
    real, fake = torch.randn(32, 2), torch.randn(32, 2) + 1
    critic = linear_critic([3.0, 4.0])
    values = [call_penalty(trick, critic, real, fake) for _ in range(9)]
    due = [v is not None for v in values]
    assert due == [True, False, False, False, True, False, False, False, True]
    assert values[4].item() == pytest.approx(4 * 10 * (5 - 1) ** 2, rel=1e-5)
    assert trick.d_steps == 9


def test_lazy_counter_survives_a_state_dict_round_trip():
    trick = GradientPenalty("r1", weight=1.0, every=3)
    real = torch.randn(8, 2)
    for _ in range(4):
        call_penalty(trick, HalfSquaredNorm(), real, real)
    resumed = GradientPenalty("r1", weight=1.0, every=3)
    resumed.load_state_dict(trick.state_dict())
    # D steps 0..3 are done; step 4 is not due, step 5 is not, step 6 is.
    due = [call_penalty(resumed, HalfSquaredNorm(), real, real) is not None for _ in range(3)]
    assert due == [False, False, True]


def test_r1_and_r2_keep_separate_counters_through_a_checkpoint(tmp_path):
    r1, r2 = GradientPenalty("r1", every=2), GradientPenalty("r2", every=3)
    trainer = fit_briefly(tiny_gan_module(tricks=[r1, r2]), 3)
    r2.d_steps = 7  # tell the two apart in the checkpoint
    trainer.save_checkpoint(tmp_path / "three.ckpt")
    resumed = GradientPenalty("r1", every=2), GradientPenalty("r2", every=3)
    fit_briefly(tiny_gan_module(tricks=list(resumed)), 5, ckpt_path=tmp_path / "three.ckpt")
    assert [trick.d_steps for trick in resumed] == [5, 9]


@pytest.mark.parametrize("kind", PENALTY_KINDS)
def test_every_kind_plugs_into_a_real_fit(kind):
    log = SignalHistory()
    module = tiny_gan_module(loss="wasserstein", tricks=[GradientPenalty(kind, weight=1.0)])
    fit_briefly(module, 2, callbacks=[log])
    penalties = [row["d_penalty/GradientPenalty"] for row in log.rows]
    assert len(penalties) == 2 and all(torch.isfinite(p) and p >= 0 for p in penalties)


def test_lazy_penalty_in_a_real_fit_with_several_d_steps():
    log = SignalHistory()
    trick = GradientPenalty("r1", weight=1.0, every=2)
    fit_briefly(tiny_gan_module(n_critic=3, tricks=[trick]), 4, callbacks=[log])
    assert trick.d_steps == 12
    # The signals keep the last D step's penalty: D steps 2, 5, 8, 11 -> due on 2 and 8 only;
    # on the others the term reads 0 rather than a stale value.
    added = [float(row["d_penalty/GradientPenalty"]) > 0 for row in log.rows]
    assert added == [True, False, True, False]


def test_batchnorm_discriminator_is_one_sentence():
    critic = nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.Linear(8, 1))
    with pytest.raises(ConfigError, match="without BatchNorm.*use norm: layer or none"):
        fit_briefly(tiny_gan_module(discriminator=critic, tricks=[GradientPenalty()]), 1)


@pytest.mark.parametrize(
    "kwargs, says",
    [
        (dict(kind="gp"), "kind must be one of"),
        (dict(weight=0.0), "weight must be > 0"),
        (dict(every=0), "every must be an integer >= 1"),
        (dict(every=2.5), "every must be an integer >= 1"),
    ],
)
def test_gradient_penalty_bad_arguments(kwargs, says):
    with pytest.raises(ConfigError, match=says):
        GradientPenalty(**kwargs)


def test_lecam_value_and_moving_averages_by_hand():
    trick = LeCam(weight=0.5, decay=0.9)
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([-2.0, 0.0])
    unused = torch.zeros(2, 2)
    first = trick.d_penalty(d_step(nn.Identity(), unused, unused, real, fake))
    # The averages start at this step's means: ema_real 2, ema_fake -1.
    assert first.item() == pytest.approx(0.5 * ((4 + 16) / 2 + (16 + 4) / 2))
    real2, fake2 = torch.tensor([12.0, 12.0]), torch.tensor([-1.0, -1.0])
    second = trick.d_penalty(d_step(nn.Identity(), unused, unused, real2, fake2))
    ema_real, ema_fake = 0.9 * 2 + 0.1 * 12, 0.9 * -1 + 0.1 * -1
    expected = 0.5 * ((12 - ema_fake) ** 2 + (-1 - ema_real) ** 2)
    assert second.item() == pytest.approx(expected, rel=1e-5)
    assert trick.ema_real.item() == pytest.approx(ema_real)


def test_lecam_plugs_into_a_real_fit_and_its_averages_round_trip():
    log = SignalHistory()
    trick = LeCam(weight=0.3)
    fit_briefly(tiny_gan_module(tricks=[trick]), 3, callbacks=[log])
    assert all(row["d_penalty/LeCam"] > 0 for row in log.rows)
    resumed = LeCam(weight=0.3)
    resumed.load_state_dict(trick.state_dict())
    assert torch.equal(resumed.ema_real, trick.ema_real)
    assert torch.equal(resumed.ema_fake, trick.ema_fake)


@pytest.mark.parametrize(
    "kwargs, says", [(dict(weight=-1.0), "weight must be > 0"), (dict(decay=1.0), "decay")]
)
def test_lecam_bad_arguments(kwargs, says):
    with pytest.raises(ConfigError, match=says):
        LeCam(**kwargs)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_penalties_in_a_fit_on_cuda():
    tricks = [GradientPenalty("dragan", every=2), LeCam()]
    module = tiny_gan_module(tricks=tricks)
    fit_briefly(module, 3, batches=4, accelerator="gpu", devices=1)
    assert tricks[1].ema_real.device.type == "cuda"
    assert torch.isfinite(module.signals.d_loss)
