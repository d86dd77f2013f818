"""MixtureClassifier: MGAN's term by hand, C learns the members, and it needs a mixture."""

import math
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from gan_tricks.errors import ConfigError
from gan_tricks.functional import Latent, latent_categories
from gan_tricks.models import GeneratorMixture, MLPGenerator
from gan_tricks.testing import SignalHistory, fit_briefly, tiny_gan_module
from gan_tricks.tricks import MixtureClassifier

K = 4


def categorical_module(**overrides):
    return tiny_gan_module(
        g_options={"latent_dim": K + 2}, latent=Latent(dim=2, categories=K), **overrides
    )


def g_step_context(module, z, **tensors):
    """The module's context as in a G step on the codes ``z``: G's raw output and ``tensors``."""
    return replace(module.engine.context, phase="g", z=z, g_output=module.generator(z), **tensors)


def test_penalty_is_weight_times_the_cross_entropy_of_the_member():
    module = categorical_module()
    trick = MixtureClassifier(weight=0.3, width=8, depth=1)
    trick.configure_networks(module, module.engine.context)
    trick.configure_networks(module, module.engine.context)  # idempotent: the same C stays
    classifier = module.mixture_classifier
    z = module.latent.sample(32, generator=torch.Generator().manual_seed(1))
    fake = module.generator(z)
    # What D saw may be packed: unused, C reads G's raw output.
    ctx = g_step_context(module, z, fake=fake.reshape(16, 4), fake_logits=torch.zeros(16))
    expected = 0.3 * F.cross_entropy(classifier(ctx.g_output), z[:, :K].argmax(1))
    assert torch.equal(ctx.g_output, fake)
    assert trick.g_penalty(ctx).item() == pytest.approx(expected.item())
    assert module.mixture_classifier is classifier


def test_configuring_needs_the_context_for_the_latent():
    module = categorical_module()
    with pytest.raises(ConfigError, match="needs the step context"):
        MixtureClassifier().configure_networks(module)


def test_the_classifier_learns_which_member_made_each_sample():
    module = categorical_module(tricks=[MixtureClassifier(weight=1.0)])
    history = SignalHistory()
    fit_briefly(module, 300, [history])
    z = module.latent.sample(2000, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        predicted = module.mixture_classifier(module.generator(z)).argmax(1)
    accuracy = (predicted == latent_categories(z, K)).float().mean().item()
    assert accuracy > 0.9  # chance is 1 / K
    first, last = (history.rows[i]["g_penalty/MixtureClassifier"].item() for i in (0, -1))
    assert first == pytest.approx(math.log(K), rel=0.2)
    assert last < 0.3 * first


def test_fade_scales_the_weight_by_the_generators_learning_rate_factor():
    from gan_tricks.functional import DelayedLinearDecay

    def decay(optimizer):
        return DelayedLinearDecay(optimizer, total_iters=10, start=2)

    faded, steady = MixtureClassifier(weight=0.5, fade=True), MixtureClassifier(weight=0.5)
    module = categorical_module(g_scheduler=decay, d_scheduler=decay, tricks=[faded])
    fit_briefly(module, 6)
    g_group = module.engine.g_optimizer.param_groups[0]
    g_lr, initial_lr = g_group["lr"], g_group["initial_lr"]
    assert g_lr == pytest.approx(initial_lr * (1 - 4 / 8))  # held 2 steps, 4 of 8 decayed
    ctx = module.engine.context
    assert faded.current_weight(ctx) == pytest.approx(0.5 * g_lr / initial_lr)
    assert steady.current_weight(ctx) == 0.5
    z = module.latent.sample(32, generator=torch.Generator().manual_seed(1))
    ctx = g_step_context(module, z)
    cross_entropy = F.cross_entropy(module.mixture_classifier(ctx.g_output), z[:, :K].argmax(1))
    assert faded.g_penalty(ctx).item() == pytest.approx(0.25 * cross_entropy.item())


def test_a_generator_mixture_is_classified_by_its_routing():
    torch.manual_seed(0)
    members = [MLPGenerator(latent_dim=2, out_dim=2, width=8, depth=1) for _ in range(3)]
    trick = MixtureClassifier()
    module = tiny_gan_module(generator=GeneratorMixture(members), tricks=[trick])
    ctx = module.engine.context
    assert trick.members(ctx) == 3
    z = module.latent.sample(64)
    assert torch.equal(trick.member_of(ctx, z), module.generator.route(z))
    assert module.mixture_classifier[-1].out_features == 3


def test_a_single_generator_is_refused_in_one_sentence():
    with pytest.raises(ConfigError, match="needs a mixture of generators"):
        tiny_gan_module(tricks=[MixtureClassifier()])  # refused when the engine is built


@pytest.mark.parametrize("kwargs", [{"weight": 0}, {"width": 0}, {"depth": 0}, {"lr": -1.0}])
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ConfigError):
        MixtureClassifier(**kwargs)


def test_several_codes_are_read_out_one_by_one():
    latent = Latent(dim=2, categories=3, codes=2)
    trick = MixtureClassifier(weight=1.0, width=8, depth=1)
    module = tiny_gan_module(g_options={"latent_dim": latent.size}, latent=latent, tricks=[trick])
    assert module.mixture_classifier[-1].out_features == 6
    z = latent.sample(16, generator=torch.Generator().manual_seed(3))
    ctx = g_step_context(module, z)
    logits = module.mixture_classifier(ctx.g_output)
    codes = latent_categories(z, 3, codes=2)
    expected = (
        F.cross_entropy(logits[:, :3], codes[:, 0]) + F.cross_entropy(logits[:, 3:], codes[:, 1])
    ) / 2
    assert trick.g_penalty(ctx).item() == pytest.approx(expected.item())
