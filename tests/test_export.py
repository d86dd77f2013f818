"""Exported generators: safetensors with the config that rebuilds G, samples unchanged."""

import pytest
import torch
from safetensors.torch import save_file

from gan_tricks.data import Digits
from gan_tricks.errors import ConfigError
from gan_tricks.export import export_generator, load_generator, sample_exported
from gan_tricks.testing import fit_briefly, tiny_image_gan_module
from gan_tricks.tricks import GeneratorEMA, SpectralNorm

G_CONFIG = {
    "class_path": "gan_tricks.models.DCGANGenerator",
    "init_args": {"latent_dim": 8, "image_size": 8, "channels": 1, "width": 8},
}


@pytest.fixture(scope="module")
def trained():
    """A tiny digits GAN with spectral norm on G (a parametrization) and G's moving average."""
    tricks = [SpectralNorm(discriminator=True, generator=True), GeneratorEMA(decay=0.9)]
    module = tiny_image_gan_module(tricks=tricks)
    fit_briefly(module, 5, data=Digits(image_size=8, batch_size=16))
    return module.eval()


def test_an_exported_generator_samples_what_the_run_samples(trained, tmp_path):
    path = export_generator(trained, tmp_path / "g.safetensors", G_CONFIG)
    generator, latent = load_generator(path)
    assert type(generator).__name__ == "DCGANGenerator" and not generator.training
    assert latent == trained.latent
    # From G's moving average, spectral norm folded into plain weights: the same pictures.
    torch.testing.assert_close(
        sample_exported(generator, latent, 32, seed=3), trained.sample(32, seed=3)
    )
    assert not any("parametrizations" in name for name in generator.state_dict())


def test_a_generator_class_outside_the_package_is_not_built_from_a_file(trained, tmp_path):
    config = {"class_path": "os.system", "init_args": {"command": "echo hacked"}}
    path = export_generator(trained, tmp_path / "g.safetensors", config)
    with pytest.raises(ConfigError, match="'os.system', which is not one of gan-tricks' own"):
        load_generator(path)
    mine = tiny_image_gan_module().generator
    generator, _ = load_generator(path, generator=mine)  # the caller builds it instead
    assert generator is mine


def test_files_that_are_not_exports_are_one_sentence(tmp_path):
    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.ones(2)}, str(plain))
    with pytest.raises(ConfigError, match="no gan-tricks generator header"):
        load_generator(plain)
    with pytest.raises(ConfigError, match="does not exist"):
        load_generator(tmp_path / "none.safetensors")
    with pytest.raises(ConfigError, match="must end in .safetensors"):
        export_generator(None, tmp_path / "g.pt", G_CONFIG)
