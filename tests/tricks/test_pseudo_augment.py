"""Adaptive pseudo augmentation (APA): the functional against its definition, the trick's
hooks, and in a real fit, where D's real batch holds that step's fakes."""

import pytest
import torch
from torch import nn

from gan_tricks.engine import Networks, StepContext
from gan_tricks.errors import ConfigError
from gan_tricks.functional import Latent, get_loss, pseudo_augment
from gan_tricks.testing import BatchRecorder, fit_briefly, tiny_gan_module
from gan_tricks.tricks import AdaptiveAugment, AdaptivePseudoAugment

BATCH = 16


def context(phase="d", **tensors) -> StepContext:
    return StepContext(
        networks=Networks(nn.Identity(), nn.Identity()),
        latent=Latent(dim=2),
        loss=get_loss("nonsaturating"),
        phase=phase,
        **tensors,
    )


def test_pseudo_augment_swaps_each_real_for_its_own_fake_with_probability_p():
    real, fake = torch.zeros(1000, 2), torch.ones(1000, 2, requires_grad=True)
    assert pseudo_augment(real, fake, 0.0) is real
    everything = pseudo_augment(real, fake, 1.0)
    assert torch.equal(everything, fake.detach()) and not everything.requires_grad
    mixed = pseudo_augment(real, fake, 0.3, generator=torch.Generator().manual_seed(0))
    # By hand: the same uniform draws, one per sample, below p pick the fake.
    chosen = torch.rand(1000, 1, generator=torch.Generator().manual_seed(0)) < 0.3
    assert torch.equal(mixed, torch.where(chosen, fake.detach(), real))
    assert (mixed[:, 0] == mixed[:, 1]).all()  # whole samples, never single coordinates
    assert 0.25 < mixed[:, 0].mean().item() < 0.35
    with pytest.raises(ConfigError, match="same shape"):
        pseudo_augment(real, fake[:10], 0.5)
    with pytest.raises(ConfigError, match=r"in \[0, 1\]"):
        pseudo_augment(real, fake, 1.5)


def test_the_trick_deceives_d_only_in_d_steps_and_steers_p_as_ada_does():
    trick = AdaptivePseudoAugment(interval=2, adjustment_images=320, initial_p=1.0)
    real, fake = torch.zeros(BATCH, 2), torch.ones(BATCH, 2)
    assert torch.equal(trick.transform_real(context(fake_batch=fake), real), fake)
    assert torch.equal(trick.transform_real(context(phase="g", fake_batch=fake), real), real)
    # The same controller as ADA: two D steps sure of the reals move p up by 2 * 16 / 320.
    ada = AdaptiveAugment(interval=2, adjustment_images=320, initial_p=0.5)
    trick.controller.p = 0.5
    for _ in range(2):
        for t in (trick, ada):
            t.after_d_step(context(real_logits=torch.ones(BATCH)))
    assert trick.p == ada.p == pytest.approx(0.5 + 2 * BATCH / 320)
    copy = AdaptivePseudoAugment(interval=2, adjustment_images=320)
    copy.load_state_dict(trick.state_dict())
    assert copy.state_dict() == trick.state_dict()


def test_in_a_fit_d_sees_the_steps_fakes_as_reals_and_p_is_logged():
    after = BatchRecorder(order=0)  # after APA (which runs before augmentation)
    trick = AdaptivePseudoAugment(interval=1000, initial_p=1.0)
    module = tiny_gan_module(tricks=[trick, after])
    fit_briefly(module, 3, log_every_n_steps=1)

    d_reals = [seen for seen in after.of("real") if seen.phase == "d"]
    d_fakes = [seen for seen in after.of("fake") if seen.phase == "d"]
    assert len(d_reals) == 3
    for real, fake in zip(d_reals, d_fakes, strict=True):
        assert torch.equal(real.batch, fake.batch)  # p = 1: every real is that step's fake
    g_reals = [seen for seen in after.of("real") if seen.phase == "g"]
    assert all(not torch.equal(r.batch, f.batch) for r, f in zip(g_reals, d_fakes))
    assert module.signals.logged["apa_p"] == 1.0
