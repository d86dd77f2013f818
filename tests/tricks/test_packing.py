"""Packing: D sees packs of m samples in both steps; a D of the wrong width is refused."""

from dataclasses import replace

import pytest
import pytorch_lightning as pl
import torch

from gan_tricks.data import Digits, Toy2D
from gan_tricks.errors import ConfigError
from gan_tricks.functional.packing import pack
from gan_tricks.lightning import GANModule
from gan_tricks.testing import fit_briefly, tiny_gan_module, tiny_image_gan_module
from gan_tricks.tricks.base import Trick
from gan_tricks.tricks.packing import Packing

BATCH = 16


def points() -> Toy2D:
    return Toy2D(name="grid25", batch_size=BATCH, batches_per_epoch=8)


class Shapes(Trick):
    """Records the shapes D is shown and the number of logits it returns (runs last)."""

    order = 1000

    def __init__(self):
        self.shapes: list[tuple[str, str, tuple[int, ...]]] = []
        self.logits: list[int] = []

    def transform_real(self, ctx, real):
        self.shapes.append(("real", ctx.phase, tuple(real.shape)))
        return real

    def transform_fake(self, ctx, fake):
        self.shapes.append(("fake", ctx.phase, tuple(fake.shape)))
        return fake

    def d_penalty(self, ctx):
        self.logits += [len(ctx.real_logits), len(ctx.fake_logits)]


def test_the_trick_packs_real_and_fake_in_both_phases():
    trick = Packing(m=2)
    ctx = tiny_gan_module().engine.context
    x = torch.randn(6, 2)
    for hook in (trick.transform_real, trick.transform_fake):
        for phase in ("d", "g"):
            assert torch.equal(hook(replace(ctx, phase=phase), x), pack(x, 2))


def test_a_fit_shows_d_packs_of_two():
    shapes = Shapes()
    module = tiny_gan_module(
        d_options={"in_dim": 4}, separate_batches=False, tricks=[shapes, Packing(m=2)]
    )
    fit_briefly(module, 2, data=points())
    expected = {(kind, phase, (BATCH // 2, 4)) for kind in ("real", "fake") for phase in "dg"}
    assert set(shapes.shapes) == expected
    assert set(shapes.logits) == {BATCH // 2}
    # Reading D outside training packs too: one logit per whole pack.
    assert module.judge(torch.randn(7, 2)).shape == (3,)


def test_a_discriminator_of_the_wrong_width_is_refused_with_the_fix():
    message = (
        "Packing(m=2) needs a discriminator that takes 2 x 2 = 4 input features/channels; "
        "set the discriminator's in_dim (or channels) to 4."
    )
    with pytest.raises(ConfigError) as error:
        fit_briefly(
            tiny_gan_module(d_options={"in_dim": 2}, tricks=[Packing(m=2)]), 1, data=points()
        )
    assert str(error.value) == message
    with pytest.raises(ConfigError, match="= 6 input"):
        fit_briefly(
            tiny_gan_module(d_options={"in_dim": 4}, tricks=[Packing(m=3)]), 1, data=points()
        )


def test_an_mlp_reading_images_is_told_its_flat_width_and_then_judges_pairs():
    image_g = {"out_dim": None, "out_shape": [1, 8, 8]}
    digits = Digits(image_size=8, batch_size=16)
    narrow = tiny_gan_module(g_options=image_g, d_options={"in_dim": 64}, tricks=[Packing(m=2)])
    with pytest.raises(ConfigError, match=r"2 x 64 = 128 input .*to 128\.$"):
        fit_briefly(narrow, 1, data=digits)
    shapes = Shapes()
    wide = tiny_gan_module(
        g_options=image_g, d_options={"in_dim": 128}, tricks=[shapes, Packing(m=2)]
    )
    fit_briefly(wide, 1, data=digits)
    assert {shape for _, _, shape in shapes.shapes} == {(8, 2, 8, 8)}
    assert set(shapes.logits) == {8}


def test_m_one_changes_nothing_and_bad_m_raises():
    x = torch.randn(5, 2)
    module = tiny_gan_module(d_options={"in_dim": 2}, tricks=[Packing(m=1)])
    assert Packing(m=1).transform_real(replace(module.engine.context, phase="d"), x) is x
    fit_briefly(module, 1, data=points())
    for m in (0, 2.0, -1):
        with pytest.raises(ConfigError, match="integer >= 1"):
            Packing(m=m)


class TinyImages(pl.LightningDataModule):
    kind = "images"
    sample_shape = (3, 8, 8)

    def train_dataloader(self):
        images = torch.rand(32, 3, 8, 8)
        return torch.utils.data.DataLoader(images, batch_size=BATCH, drop_last=True)


def test_images_need_m_times_the_channels():
    def image_module(d_channels: int) -> GANModule:
        return tiny_image_gan_module(
            channels=3,
            width=4,
            latent_dim=4,
            d_options={"channels": d_channels},
            tricks=[Packing(m=2)],
        )

    with pytest.raises(ConfigError, match=r"2 x 3 = 6 input .* channels\) to 6\."):
        fit_briefly(image_module(3), 1, data=TinyImages())
    module = image_module(6)
    fit_briefly(module, 1, data=TinyImages())
    assert torch.isfinite(module.signals.d_loss)
