"""WeightClipping and SpectralNorm in real fits, their conflicts, and loading a normalised run."""

from pathlib import Path

import pytest
import torch
from torch.nn.utils import parametrize

from gan_tricks.cli import main
from gan_tricks.errors import ConfigError
from gan_tricks.run import load_run
from gan_tricks.testing import fit_briefly, tiny_gan_module
from gan_tricks.tricks.constraints import SpectralNorm, WeightClipping
from gan_tricks.tricks.penalties import GradientPenalty

ROOT = Path(__file__).resolve().parents[2]


def linear_layers(network):
    return [m for m in network.modules() if isinstance(m, torch.nn.Linear)]


def test_weight_clipping_keeps_the_critic_in_the_box_during_a_fit():
    module = tiny_gan_module(loss="wasserstein", tricks=[WeightClipping(0.01)])
    fit_briefly(module, 3)
    parameters = list(module.discriminator.parameters())
    assert all(p.abs().max() <= 0.01 for p in parameters)
    assert any(p.abs().max() == 0.01 for p in parameters)
    assert any(p.abs().max() > 0.01 for p in module.generator.parameters())


def test_spectral_norm_is_applied_before_the_optimizers_and_trains_the_originals():
    module = tiny_gan_module(loss="hinge", tricks=[SpectralNorm()])
    before = linear_layers(module.discriminator)[0].weight.detach().clone()
    trainer = fit_briefly(module, 3)
    layers = linear_layers(module.discriminator)
    assert all(parametrize.is_parametrized(layer, "weight") for layer in layers)
    assert not any(parametrize.is_parametrized(m) for m in module.generator.modules())
    original = layers[0].parametrizations.weight.original
    assert not torch.equal(original, before)  # trained
    d_params = {id(p) for group in trainer.optimizers[1].param_groups for p in group["params"]}
    assert id(original) in d_params
    # A second fit on the same module finds the layers already normalised.
    SpectralNorm().configure_networks(module)
    assert len(layers[0].parametrizations.weight) == 1


def test_spectral_norm_of_the_generator_only():
    module = tiny_gan_module()
    SpectralNorm(discriminator=False, generator=True).configure_networks(module)
    assert all(parametrize.is_parametrized(m, "weight") for m in linear_layers(module.generator))
    assert not any(parametrize.is_parametrized(m) for m in module.discriminator.modules())


@pytest.mark.parametrize(
    "tricks",
    [[WeightClipping(), SpectralNorm()], [SpectralNorm(), WeightClipping()]],
    ids=["clip-first", "sn-first"],
)
def test_clipping_with_spectral_norm_on_d_is_one_sentence(tricks):
    with pytest.raises(ConfigError, match="WeightClipping and spectral norm .* keep one"):
        fit_briefly(tiny_gan_module(loss="wasserstein", tricks=tricks), 1)


def test_clipping_with_spectral_norm_on_g_only_is_fine():
    tricks = [WeightClipping(), SpectralNorm(discriminator=False, generator=True)]
    fit_briefly(tiny_gan_module(loss="wasserstein", tricks=tricks), 1)


def test_clipping_with_a_gradient_penalty_is_one_sentence():
    with pytest.raises(ConfigError, match="WeightClipping and GradientPenalty"):
        tricks = [GradientPenalty(), WeightClipping()]
        fit_briefly(tiny_gan_module(loss="wasserstein", tricks=tricks), 1)


@pytest.mark.parametrize(
    "build, says",
    [
        (lambda: WeightClipping(0.0), "clip_value must be > 0"),
        (lambda: SpectralNorm(discriminator=False), "at least one of them"),
        (lambda: SpectralNorm(n_power_iterations=0), "n_power_iterations"),
    ],
)
def test_bad_arguments(build, says):
    with pytest.raises(ConfigError, match=says):
        build()


def test_a_run_with_spectral_norm_on_g_loads_for_sampling(tmp_path, monkeypatch):
    # The real `gan-tricks fit` entry point, in process: a subprocess would spend most of this
    # test importing Lightning again.
    monkeypatch.chdir(tmp_path)
    extra = tmp_path / "sn_generator.yaml"
    extra.write_text(
        "model:\n  tricks+:\n"
        "    - class_path: gan_tricks.tricks.constraints.SpectralNorm\n"
        "      init_args: {discriminator: true, generator: true}\n"
    )
    code = main(
        [
            "fit", "--config", str(ROOT / "recipes" / "grid25.yaml"), "--config", str(extra),
            "--trainer.max_steps", "5", "--trainer.enable_progress_bar", "false",
            "--name", "sn", "--wandb", "off", "--data.init_args.batch_size", "32",
            "--model.generator.init_args.width", "16",
            "--model.discriminator.init_args.width", "16",
        ]
    )  # fmt: skip
    assert code == 0
    checkpoint = tmp_path / "runs" / "sn" / "checkpoints" / "last.ckpt"
    state = torch.load(checkpoint, weights_only=True)["state_dict"]
    assert any(key.startswith("generator.") and "parametrizations" in key for key in state)
    module, _ = load_run(checkpoint)  # strict load: the keys only fit once SN is re-applied
    assert all(parametrize.is_parametrized(m, "weight") for m in linear_layers(module.generator))
    assert torch.isfinite(module.sample(8, seed=0)).all()
