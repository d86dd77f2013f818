"""DiffAugment, AdaptiveAugment and ConsistencyRegularization: their hooks, and in real fits."""

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from gan_tricks.data import Toy2D
from gan_tricks.engine import Networks, StepContext
from gan_tricks.errors import ConfigError
from gan_tricks.functional import Latent, get_loss
from gan_tricks.functional.augment import augment_with_probability, diff_augment
from gan_tricks.testing import BatchRecorder, fit_briefly, tiny_gan_module, tiny_image_gan_module
from gan_tricks.tricks.augment import AdaptiveAugment, ConsistencyRegularization, DiffAugment

BATCH = 16


class TinyImages(pl.LightningDataModule):
    """64 strictly positive 1x8x8 images: any exact zero D sees was made by an augmentation."""

    kind = "images"
    sample_shape = (1, 8, 8)

    def train_dataloader(self):
        images = torch.rand(64, 1, 8, 8, generator=torch.Generator().manual_seed(0)) + 0.5
        return DataLoader(TensorDataset(images), batch_size=BATCH, drop_last=True)


def points() -> Toy2D:
    return Toy2D(name="grid25", batch_size=BATCH, batches_per_epoch=8)


class Function(nn.Module):
    """A discriminator without parameters: a fixed function of its input."""

    def __init__(self, function):
        super().__init__()
        self.function = function

    def forward(self, x):
        return self.function(x)


def context(discriminator=None, phase="d", **tensors) -> StepContext:
    """A step's context over ``discriminator`` (by default an unused identity) and ``tensors``."""
    networks = Networks(
        nn.Identity(), discriminator if discriminator is not None else nn.Identity()
    )
    return StepContext(
        networks=networks,
        latent=Latent(dim=2),
        loss=get_loss("nonsaturating"),
        phase=phase,
        **tensors,
    )


# ---------------------------------------------------------------- DiffAugment
def test_diff_augment_trick_applies_the_functional_in_every_hook_and_phase():
    trick = DiffAugment("color,translation,cutout")
    x = torch.rand(4, 3, 16, 16)
    for hook in (trick.transform_real, trick.transform_fake):
        for phase in ("d", "g"):
            torch.manual_seed(11)
            out = hook(context(phase=phase), x)
            torch.manual_seed(11)
            assert torch.equal(out, diff_augment(x, "color,translation,cutout"))


def test_diff_augment_reaches_real_and_fake_in_both_steps_of_a_fit():
    seen = BatchRecorder()  # after the augmentations, which run earlier
    module = tiny_image_gan_module(separate_batches=False, tricks=[seen, DiffAugment()])
    fit_briefly(module, 2, data=TinyImages())
    kinds = {(seen_batch.side, seen_batch.phase) for seen_batch in seen.batches}
    assert kinds == {("real", "d"), ("fake", "d"), ("real", "g"), ("fake", "g")}
    for *_, batch in seen.batches:
        zeros = (batch == 0).flatten(1).sum(dim=1)
        assert (zeros >= 16).all()  # every sample lost at least its 4x4 cutout square


def test_diff_augment_config_errors():
    with pytest.raises(ConfigError, match="policy"):
        DiffAugment("color,flip")
    module = tiny_gan_module(tricks=[DiffAugment()])
    with pytest.raises(
        ConfigError,
        match="DiffAugment augments images but the data is points; remove it from model.tricks",
    ):
        fit_briefly(module, 1, data=points())


# ---------------------------------------------------------------- AdaptiveAugment
def feed(trick: AdaptiveAugment, logits: torch.Tensor, steps: int) -> None:
    """``steps`` D steps whose real and fake logits are ``logits``."""
    ctx = context(real_logits=logits, fake_logits=logits)
    for _ in range(steps):
        assert trick.d_penalty(ctx) is None
        trick.after_d_step(ctx)


def test_ada_p_moves_by_the_stated_step_in_the_right_direction():
    trick = AdaptiveAugment(target=0.6, interval=4, adjustment_images=1000, initial_p=0.5)
    step = BATCH * 4 / 1000
    feed(trick, torch.ones(BATCH), 3)
    assert trick.p == 0.5 and trick.r_t is None  # nothing before a full interval
    feed(trick, torch.ones(BATCH), 1)
    assert trick.r_t == 1.0 and trick.p == pytest.approx(0.5 + step)
    # r_t averages the interval: 3 confident steps and one of all -1 give 0.5 < 0.6: down.
    feed(trick, torch.ones(BATCH), 3)
    feed(trick, -torch.ones(BATCH), 1)
    assert trick.r_t == 0.5 and trick.p == pytest.approx(0.5)
    feed(trick, -torch.ones(BATCH), 4 * 100)
    assert trick.p == 0.0  # clamped


def test_ada_augments_with_p_and_equals_the_functional():
    trick = AdaptiveAugment(initial_p=0.0)
    x = torch.rand(8, 1, 8, 8)
    assert torch.equal(trick.transform_real(context(), x), x)
    trick.p = 0.7
    for hook in (trick.transform_real, trick.transform_fake):
        for phase in ("d", "g"):
            torch.manual_seed(3)
            out = hook(context(phase=phase), x)
            torch.manual_seed(3)
            assert torch.equal(out, augment_with_probability(x, 0.7, trick.policy))


def test_ada_in_a_fit_updates_and_logs_p():
    trick = AdaptiveAugment(interval=1, adjustment_images=160, initial_p=0.5)
    module = tiny_image_gan_module(tricks=[trick])
    trainer = fit_briefly(module, 3, data=TinyImages(), log_every_n_steps=1)
    # Three updates of +-0.1 from 0.5.
    assert any(trick.p == pytest.approx(0.5 + 0.1 * k) for k in (-3, -1, 1, 3))
    assert module.signals.logged == {"ada_p": trick.p, "ada_r_t": trick.r_t}
    assert trainer.callback_metrics["train/ada_p"].item() == pytest.approx(trick.p)
    assert trainer.callback_metrics["train/ada_r_t"].item() == pytest.approx(trick.r_t)


def test_ada_state_dict_round_trip_mid_interval():
    trick = AdaptiveAugment(interval=4, adjustment_images=1000, initial_p=0.2)
    feed(trick, torch.ones(BATCH), 6)
    copy = AdaptiveAugment(interval=4, adjustment_images=1000)
    copy.load_state_dict(trick.state_dict())
    assert copy.p == trick.p and copy.r_t == trick.r_t
    feed(trick, torch.tensor([1.0, -1.0]).repeat(8), 2)
    feed(copy, torch.tensor([1.0, -1.0]).repeat(8), 2)
    assert copy.state_dict() == trick.state_dict()
    assert trick.r_t == 0.5  # 2 steps of +1 and 2 of mean 0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"target": 1.2}, "target"),
        ({"interval": 0}, "interval"),
        ({"adjustment_images": 0}, "adjustment_images"),
        ({"initial_p": -0.1}, "initial_p"),
        ({"policy": "blur"}, "policy"),
    ],
)
def test_ada_bad_settings_raise(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        AdaptiveAugment(**kwargs)


def test_ada_refuses_points_and_a_second_augmentation():
    with pytest.raises(ConfigError, match="AdaptiveAugment augments images"):
        fit_briefly(tiny_gan_module(tricks=[AdaptiveAugment()]), 1, data=points())
    with pytest.raises(ConfigError, match="keep one of them"):
        module = tiny_image_gan_module(tricks=[AdaptiveAugment(), DiffAugment()])
        fit_briefly(module, 1, data=TinyImages())


# ---------------------------------------------------------------- ConsistencyRegularization
def test_bcr_is_zero_for_a_discriminator_invariant_to_the_transform():
    def total(x):
        return x.sum(dim=(1, 2, 3))

    centred = torch.zeros(8, 1, 16, 16)
    centred[:, :, 2:14, 2:14] = torch.rand(8, 1, 12, 12) + 0.1
    trick = ConsistencyRegularization(policy="translation")
    ctx = context(
        Function(total),
        real=centred,
        fake=centred,
        real_logits=total(centred),
        fake_logits=total(centred),
    )
    penalty = trick.d_penalty(ctx)
    assert penalty.item() == pytest.approx(0.0, abs=1e-6)


def test_bcr_on_points_matches_the_jitter_variance():
    # D(x) = a.x: D(x + e) - D(x) = a.e, whose mean square is |a|^2 jitter^2.
    a = torch.tensor([3.0, -4.0])

    def linear(x):
        return x @ a

    torch.manual_seed(0)
    x = torch.randn(50_000, 2)
    trick = ConsistencyRegularization(real_weight=10.0, fake_weight=2.0, jitter=0.1)
    ctx = context(Function(linear), real=x, fake=x, real_logits=linear(x), fake_logits=linear(x))
    penalty = trick.d_penalty(ctx)
    assert penalty.item() == pytest.approx((10.0 + 2.0) * 25 * 0.01, rel=0.03)


def test_bcr_in_fits_on_images_and_points():
    module = tiny_image_gan_module(tricks=[ConsistencyRegularization()])
    fit_briefly(module, 2, data=TinyImages())
    assert module.signals.d_penalties["ConsistencyRegularization"] > 0
    module = tiny_gan_module(tricks=[ConsistencyRegularization(jitter=0.05)])
    fit_briefly(module, 2, data=points())
    assert module.signals.as_dict()["d_penalty/ConsistencyRegularization"] > 0


def test_bcr_bad_settings_raise():
    with pytest.raises(ConfigError, match="real_weight and fake_weight"):
        ConsistencyRegularization(real_weight=-1.0)
    with pytest.raises(ConfigError, match="jitter"):
        ConsistencyRegularization(jitter=0.0)
    with pytest.raises(ConfigError, match="policy"):
        ConsistencyRegularization(policy="mixup")
