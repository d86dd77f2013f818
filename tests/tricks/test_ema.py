"""GeneratorEMA: the average follows the hand formula, sampling uses it, checkpoints carry it."""

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gan_tricks.errors import ConfigError
from gan_tricks.run import load_run
from gan_tricks.testing import fit_briefly, tiny_gan_module
from gan_tricks.tricks.base import Trick
from gan_tricks.tricks.ema import GeneratorEMA

ROOT = Path(__file__).resolve().parents[2]
# BatchNorm in G: the average must copy its running statistics along with the weights.
G_WITH_BATCHNORM = {"norm": "batch"}


class Snapshots(Trick):
    """G's weights after every G step."""

    def __init__(self):
        self.weights: list[list[torch.Tensor]] = []

    def after_g_step(self, ctx):
        self.weights.append([p.detach().clone() for p in ctx.generator.parameters()])


def hand_average(start, snapshots, decays):
    average = [p.clone() for p in start]
    for weights, decay in zip(snapshots, decays):
        average = [decay * e + (1 - decay) * p for e, p in zip(average, weights)]
    return average


def test_configure_networks_adds_a_frozen_copy_once():
    module = tiny_gan_module(g_options=G_WITH_BATCHNORM)
    trick = GeneratorEMA()
    trick.configure_networks(module)
    average = module.generator_ema
    assert average is not module.generator
    assert all(not p.requires_grad for p in average.parameters())
    assert all(
        torch.equal(a, b) for a, b in zip(average.parameters(), module.generator.parameters())
    )
    trick.configure_networks(module)
    assert module.generator_ema is average
    assert any(key.startswith("generator_ema.") for key in module.state_dict())


def test_the_average_follows_the_hand_update_with_rampup():
    snapshots = Snapshots()
    module = tiny_gan_module(
        g_options=G_WITH_BATCHNORM, tricks=[snapshots, GeneratorEMA(decay=0.999, rampup=10)]
    )
    start = [p.detach().clone() for p in module.generator.parameters()]
    fit_briefly(module, 4)
    decays = [min(0.999, (1 + k) / (10 + k)) for k in range(4)]
    expected = hand_average(start, snapshots.weights, decays)
    for got, want in zip(module.generator_ema.parameters(), expected):
        assert torch.allclose(got, want, atol=1e-6)
    # BatchNorm's running statistics are G's, not averaged.
    for ema_buffer, buffer in zip(module.generator_ema.buffers(), module.generator.buffers()):
        assert torch.equal(ema_buffer, buffer)


def test_the_average_copies_g_until_start_step():
    snapshots = Snapshots()
    ema = GeneratorEMA(decay=0.5, start_step=2, rampup=None)
    module = tiny_gan_module(g_options=G_WITH_BATCHNORM, tricks=[snapshots, ema])
    fit_briefly(module, 4)
    expected = hand_average(snapshots.weights[1], snapshots.weights[2:], [0.5, 0.5])
    for got, want in zip(module.generator_ema.parameters(), expected):
        assert torch.allclose(got, want, atol=1e-6)


def test_sampling_after_a_fit_uses_the_average():
    module = tiny_gan_module(g_options=G_WITH_BATCHNORM, tricks=[GeneratorEMA(0.9, rampup=None)])
    fit_briefly(module, 3)
    samples = module.sample(64, seed=5)
    z = module.latent.sample(64, generator=torch.Generator().manual_seed(5))
    module.generator_ema.eval()
    module.generator.eval()
    with torch.no_grad():
        assert torch.equal(samples, module.generator_ema(z))
        assert not torch.allclose(samples, module.generator(z))


class SpectralNormOnG(Trick):
    """A structural trick on G (idempotent), listed after GeneratorEMA below."""

    def configure_networks(self, networks, ctx=None):
        layer = networks.generator.net[0]
        if not torch.nn.utils.parametrize.is_parametrized(layer):
            torch.nn.utils.parametrizations.spectral_norm(layer)


def test_the_copy_takes_g_structure_whatever_the_trick_order():
    module = tiny_gan_module(g_options=G_WITH_BATCHNORM, tricks=[GeneratorEMA(), SpectralNormOnG()])
    fit_briefly(module, 2)
    keys = {
        key.removeprefix("generator.")
        for key in module.state_dict()
        if key.startswith("generator.")
    }
    ema_keys = {
        key.removeprefix("generator_ema.")
        for key in module.state_dict()
        if key.startswith("generator_ema.")
    }
    assert keys == ema_keys and any("parametrizations" in key for key in keys)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"decay": 1.0}, "decay"), ({"start_step": -1}, "start_step"), ({"rampup": 0.5}, "rampup")],
)
def test_bad_settings_raise(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        GeneratorEMA(**kwargs)


def test_a_cli_run_saves_the_average_and_load_run_restores_it(tmp_path):
    result = subprocess.run(
        [
            sys.executable, "-m", "gan_tricks.cli", "fit",
            "--config", str(ROOT / "recipes" / "tricks" / "generator_ema.yaml"),
            "--trainer.max_steps", "5", "--trainer.enable_progress_bar", "false",
            "--wandb", "off", "--name", "ema", "--trainer.default_root_dir", str(tmp_path),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoint = tmp_path / "ema" / "checkpoints" / "last.ckpt"
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    module, _ = load_run(checkpoint)
    assert module.generator_ema is not None
    for name, value in module.generator_ema.state_dict().items():
        assert torch.equal(value, saved[f"generator_ema.{name}"])
    assert any(
        not torch.equal(value, saved[f"generator.{name}"])
        for name, value in module.generator_ema.state_dict().items()
    )
    z = module.latent.sample(10, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(module.sample(10, seed=0), module.generator_ema(z))


def test_a_deep_copy_of_the_module_keeps_its_average():
    module = tiny_gan_module(g_options=G_WITH_BATCHNORM)
    GeneratorEMA().configure_networks(module)
    clone = copy.deepcopy(module)
    assert clone.generator_ema is not None and clone.generator_ema is not module.generator_ema
