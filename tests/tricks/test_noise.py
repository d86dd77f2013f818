"""InstanceNoise and GeneratorLayerNoise inside real fits: noise std, schedule, hooks, state."""

from functools import partial

import pytest
import torch
import torch.nn.functional as F

from gan_tricks.engine import GANEngine
from gan_tricks.errors import ConfigError
from gan_tricks.functional import Latent
from gan_tricks.models import MLPDiscriminator, MLPGenerator
from gan_tricks.testing import BatchRecorder, fit_briefly, tiny_gan_module
from gan_tricks.tricks.base import Trick
from gan_tricks.tricks.noise import GeneratorLayerNoise, InstanceNoise

BATCH = 1024


# 1024 samples per batch: the std of the noise a trick added is measured over each batch.
fit = partial(fit_briefly, batch_size=BATCH, batches=4)


def noise_added(trick: Trick, steps: int, **module_args) -> list[tuple[int, str, str, float]]:
    """(step, phase, real/fake, std of what the trick added) for every batch of a fit."""
    before, after = BatchRecorder(order=-50), BatchRecorder(order=50)
    fit(tiny_gan_module(tricks=[before, trick, after], **module_args), steps)
    assert [s[:3] for s in before.batches] == [s[:3] for s in after.batches]
    return [
        (step, phase, side, (noisy - clean).std().item())
        for (step, phase, side, clean), (*_, noisy) in zip(before.batches, after.batches)
    ]


def test_instance_noise_follows_the_linear_schedule_on_real_and_fake_in_both_phases():
    stds = noise_added(InstanceNoise(sigma=1.0, anneal_steps=4), steps=4)
    # Per iteration: D step real and fake, G step fake (non-relativistic loss: no real).
    assert [(phase, side) for _, phase, side, _ in stds[:3]] == [
        ("d", "real"),
        ("d", "fake"),
        ("g", "fake"),
    ]
    assert len(stds) == 12
    for step, _, _, std in stds:
        # 2048 Gaussian draws: the sample std is within 5% of sigma with near certainty.
        assert std == pytest.approx(1.0 - step / 4, rel=0.05)


def test_instance_noise_only_in_the_asked_phases_and_the_generator_step_real_too():
    stds = noise_added(
        InstanceNoise(sigma=0.5, schedule="constant", phases=("d",)),
        steps=1,
        loss="relativistic_average",
    )
    by_phase = {(phase, side): std for _, phase, side, std in stds}
    assert by_phase[("d", "real")] == pytest.approx(0.5, rel=0.05)
    assert by_phase[("d", "fake")] == pytest.approx(0.5, rel=0.05)
    assert by_phase[("g", "real")] == 0.0 and by_phase[("g", "fake")] == 0.0


def test_unset_anneal_steps_anneal_over_the_run_and_sigma_is_logged():
    trick = InstanceNoise(sigma=0.8, schedule="linear")
    module = tiny_gan_module(tricks=[trick])
    trainer = fit(module, steps=4, log_every_n_steps=1)
    # The last iteration is step 3 of 4.
    assert trick.current_sigma == pytest.approx(0.8 * (1 - 3 / 4))
    assert trick.sigma_at(4) == 0.0 and trick.sigma_at(2) == pytest.approx(0.4)
    assert module.signals.logged["InstanceNoise/sigma"] == pytest.approx(0.2)
    assert trainer.callback_metrics["train/InstanceNoise/sigma"].item() == pytest.approx(0.2)


def test_cosine_schedule_values():
    trick = InstanceNoise(sigma=1.0, anneal_steps=10, schedule="cosine")
    assert trick.sigma_at(0) == 1.0 and trick.sigma_at(5) == pytest.approx(0.5)
    assert trick.sigma_at(10) == 0.0 and trick.sigma_at(20) == 0.0


def test_boost_scales_the_schedule_and_survives_a_state_dict_round_trip():
    trick = InstanceNoise(sigma=0.2, anneal_steps=10)
    trick.boost(3.0)
    assert trick.sigma_at(0) == pytest.approx(0.6) and trick.sigma_at(5) == pytest.approx(0.3)
    restored = InstanceNoise(sigma=0.2, anneal_steps=10)
    restored.load_state_dict(trick.state_dict())
    assert restored.sigma_at(5) == pytest.approx(0.3)
    with pytest.raises(ConfigError, match="factor must be > 0"):
        trick.boost(0.0)


def test_boost_is_restored_from_a_checkpoint(tmp_path):
    trick = InstanceNoise(sigma=0.1, anneal_steps=100)
    trick.boost(2.0)
    trainer = fit(tiny_gan_module(tricks=[trick]), steps=1)
    trainer.save_checkpoint(tmp_path / "last.ckpt")
    resumed = InstanceNoise(sigma=0.1, anneal_steps=100)
    fit(tiny_gan_module(tricks=[resumed]), steps=2, ckpt_path=tmp_path / "last.ckpt")
    assert resumed.scale == 2.0
    # Resumed at step 1: the boosted schedule continues where it was.
    assert resumed.current_sigma == pytest.approx(0.2 * (1 - 1 / 100))


def test_instance_noise_config_errors():
    with pytest.raises(ConfigError, match="sigma must be >= 0"):
        InstanceNoise(sigma=-1.0)
    with pytest.raises(ConfigError, match="schedule must be one of"):
        InstanceNoise(schedule="step")
    with pytest.raises(ConfigError, match="no effect with schedule constant"):
        InstanceNoise(anneal_steps=10, schedule="constant")
    with pytest.raises(ConfigError, match="anneal_steps must be at least 1"):
        InstanceNoise(anneal_steps=0)
    with pytest.raises(ConfigError, match="phases must be a non-empty list"):
        InstanceNoise(phases=("x",))
    with pytest.raises(ConfigError, match="phases must be a non-empty list"):
        InstanceNoise(phases=())
    with pytest.raises(ConfigError, match=r"max_steps but none is set; give the engine max"):
        fit(tiny_gan_module(tricks=[InstanceNoise()]), steps=-1, max_epochs=1)


class GeneratorProbe(Trick):
    """Checks G's noise from inside a fit: hooks, std on the first hidden layer, eval mode.

    Listed after the GeneratorLayerNoise under test, so it starts (and hooks G) after it.
    """

    def __init__(self):
        self.differences: list[torch.Tensor] = []
        self.hook_counts: list[int] = []
        self.eval_samples_equal: list[bool] = []
        self.sample = None  # the module's sampling, set once the module is built

    def start(self, ctx):
        # Registered after GeneratorLayerNoise's hook, so it sees the noisy output.
        first = ctx.generator.net[0]

        def record(layer, inputs, output):
            clean = F.linear(inputs[0], layer.weight, layer.bias)
            self.differences.append((output - clean).detach())

        self.handle = first.register_forward_hook(record)

    def after_g_step(self, ctx):
        self.hook_counts.append(
            sum(len(m._forward_hooks) for m in ctx.generator.modules()) - 1  # minus ours
        )
        a, b = self.sample(8, seed=0), self.sample(8, seed=0)
        self.eval_samples_equal.append(torch.equal(a, b))

    def close(self, ctx):
        self.handle.remove()


def probed_module(noise: GeneratorLayerNoise):
    """A tiny module with ``noise`` and a :class:`GeneratorProbe` after it."""
    probe = GeneratorProbe()
    module = tiny_gan_module(tricks=[noise, probe])
    probe.sample = module.sample
    return module, probe


def test_generator_layer_noise_in_a_fit():
    module, probe = probed_module(GeneratorLayerNoise(sigma=0.3))
    keys = set(module.state_dict())
    fit(module, steps=2)
    # MLPGenerator(depth=2) has three Linear layers; the output one is skipped.
    assert probe.hook_counts == [2, 2]
    assert all(probe.eval_samples_equal)
    noise = torch.cat(probe.differences)  # G ran in the D and the G steps, in train mode
    assert noise.numel() >= 2 * 2 * BATCH * 16
    assert noise.std().item() == pytest.approx(0.3, rel=0.03)
    assert noise.mean().item() == pytest.approx(0.0, abs=0.01)
    # After the fit: no hook left, same state dict keys.
    assert all(len(m._forward_hooks) == 0 for m in module.generator.modules())
    assert set(module.state_dict()) == keys


def test_generator_layer_noise_on_the_output_and_annealed():
    trick = GeneratorLayerNoise(sigma=0.5, schedule="linear", anneal_steps=2, include_output=True)
    module, probe = probed_module(trick)
    fit(module, steps=2)
    assert probe.hook_counts == [3, 3]
    # Step 0: sigma 0.5 (D and G step); step 1: 0.25.
    assert torch.cat(probe.differences[:2]).std().item() == pytest.approx(0.5, rel=0.05)
    assert torch.cat(probe.differences[2:]).std().item() == pytest.approx(0.25, rel=0.05)


class Crash(Trick):
    """Fails in the first D step, once the run started."""

    def after_d_step(self, ctx):
        raise RuntimeError("boom")


def test_hooks_are_removed_when_a_run_closes_after_a_crash():
    torch.manual_seed(0)
    generator = MLPGenerator(latent_dim=2, out_dim=2, width=16, depth=2)
    discriminator = MLPDiscriminator(in_dim=2, width=16, depth=2)
    engine = GANEngine(
        generator,
        discriminator,
        torch.optim.Adam,
        torch.optim.Adam,
        latent=Latent(dim=2),
        tricks=[GeneratorLayerNoise(), Crash()],
    )
    with pytest.raises(RuntimeError, match="boom"):
        engine.step(torch.randn(16, 2))
    assert sum(len(m._forward_hooks) for m in generator.modules()) == 2  # still on
    engine.close()  # what a loop does in its ``finally``
    assert all(len(m._forward_hooks) == 0 for m in generator.modules())


def test_hooks_are_removed_when_a_fit_crashes():
    module = tiny_gan_module(tricks=[GeneratorLayerNoise(), Crash()])
    with pytest.raises(RuntimeError, match="boom"):
        fit(module, steps=1)
    assert all(len(m._forward_hooks) == 0 for m in module.generator.modules())


def test_generator_layer_noise_config_errors():
    with pytest.raises(ConfigError, match="no Conv2d layer in the generator"):
        fit(tiny_gan_module(tricks=[GeneratorLayerNoise(layer_types=("Conv2d",))]), steps=1)
    with pytest.raises(ConfigError, match="must name at least one layer class"):
        GeneratorLayerNoise(layer_types=())
    with pytest.raises(ConfigError, match="sigma must be >= 0"):
        GeneratorLayerNoise(sigma=-0.1)
    with pytest.raises(ConfigError, match="no effect with schedule constant"):
        GeneratorLayerNoise(anneal_steps=100)
