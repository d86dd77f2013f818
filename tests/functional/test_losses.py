"""Every loss pair against values computed by hand from its formula."""

import math

import pytest
import torch

from gan_tricks.errors import ConfigError
from gan_tricks.functional import LOSSES, get_loss
from gan_tricks.functional.losses import combine_discriminator_losses

REAL = torch.tensor([0.0, 2.0])
FAKE = torch.tensor([0.0, -1.0])


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def mean(*values: float) -> float:
    return sum(values) / len(values)


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_bce_discriminator_loss_by_hand():
    # -log sigmoid(r) = softplus(-r); -log(1 - sigmoid(f)) = softplus(f)
    expected = mean(softplus(-0.0), softplus(-2.0)) + mean(softplus(0.0), softplus(-1.0))
    for name in ("minimax", "nonsaturating"):
        assert get_loss(name).d_loss(REAL, FAKE).item() == pytest.approx(expected, rel=1e-6)


def test_bce_discriminator_loss_with_soft_targets_by_hand():
    t_real, t_fake = 0.9, 0.1

    def bce(x, t):
        p = sigmoid(x)
        return -(t * math.log(p) + (1 - t) * math.log(1 - p))

    expected = mean(bce(0.0, t_real), bce(2.0, t_real)) + mean(bce(0.0, t_fake), bce(-1.0, t_fake))
    got = get_loss("nonsaturating").d_loss(REAL, FAKE, t_real, torch.full((2,), t_fake))
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_minimax_generator_loss_by_hand():
    # G minimises log(1 - sigmoid(f))
    expected = mean(math.log(1 - sigmoid(0.0)), math.log(1 - sigmoid(-1.0)))
    assert get_loss("minimax").g_loss(FAKE).item() == pytest.approx(expected, rel=1e-6)


def test_nonsaturating_generator_loss_by_hand():
    expected = mean(-math.log(sigmoid(0.0)), -math.log(sigmoid(-1.0)))
    assert get_loss("nonsaturating").g_loss(FAKE).item() == pytest.approx(expected, rel=1e-6)


def test_minimax_saturates_where_nonsaturating_does_not():
    """The reason the non-saturating loss exists: gradients when D rejects fakes confidently."""
    fake = torch.tensor([-8.0], requires_grad=True)
    (minimax_grad,) = torch.autograd.grad(get_loss("minimax").g_loss(fake), fake)
    (nonsat_grad,) = torch.autograd.grad(get_loss("nonsaturating").g_loss(fake), fake)
    assert abs(minimax_grad.item()) < 1e-3
    assert abs(nonsat_grad.item()) > 0.99


def test_wasserstein_by_hand():
    loss = get_loss("wasserstein")
    assert loss.d_loss(REAL, FAKE).item() == pytest.approx(mean(0.0, -1.0) - mean(0.0, 2.0))
    assert loss.g_loss(FAKE).item() == pytest.approx(0.5)


def test_hinge_by_hand():
    loss = get_loss("hinge")
    # relu(1 - r): [1, 0]; relu(1 + f): [1, 0]
    assert loss.d_loss(REAL, FAKE).item() == pytest.approx(0.5 + 0.5)
    assert loss.g_loss(FAKE).item() == pytest.approx(0.5)


def test_least_squares_by_hand():
    loss = get_loss("least_squares")
    d = 0.5 * mean((0 - 1) ** 2, (2 - 1) ** 2) + 0.5 * mean(0**2, (-1) ** 2)
    assert loss.d_loss(REAL, FAKE).item() == pytest.approx(d)
    assert loss.g_loss(FAKE).item() == pytest.approx(0.5 * mean(1.0, 4.0))


def test_relativistic_average_by_hand():
    loss = get_loss("relativistic_average")
    mean_real, mean_fake = 1.0, -0.5
    d = mean(softplus(-(0.0 - mean_fake)), softplus(-(2.0 - mean_fake))) + mean(
        softplus(0.0 - mean_real), softplus(-1.0 - mean_real)
    )
    g = mean(softplus(-(0.0 - mean_real)), softplus(-(-1.0 - mean_real))) + mean(
        softplus(0.0 - mean_fake), softplus(2.0 - mean_fake)
    )
    assert loss.d_loss(REAL, FAKE).item() == pytest.approx(d, rel=1e-6)
    assert loss.g_loss(FAKE, REAL).item() == pytest.approx(g, rel=1e-6)
    assert loss.g_needs_real


def test_relativistic_pairing_by_hand():
    # R3GAN's eq. 3: each real against its own fake, softplus(-(D(x_i) - D(G(z_i)))).
    loss = get_loss("relativistic_pairing")
    d = mean(softplus(-(0.0 - 0.0)), softplus(-(2.0 - -1.0)))
    g = mean(softplus(-(0.0 - 0.0)), softplus(-(-1.0 - 2.0)))
    assert loss.d_loss(REAL, FAKE).item() == pytest.approx(d, rel=1e-6)
    assert loss.g_loss(FAKE, REAL).item() == pytest.approx(g, rel=1e-6)
    assert loss.g_needs_real and not loss.uses_targets
    # Pairs, not means: swapping two fakes changes the loss (the average loss would not).
    swapped = loss.d_loss(REAL, FAKE.flip(0)).item()
    assert swapped == pytest.approx(mean(softplus(-(0.0 - -1.0)), softplus(-(2.0 - 0.0))))
    assert swapped != pytest.approx(d)
    with pytest.raises(ConfigError, match="same shape"):
        loss.d_loss(REAL, FAKE[:1])


def test_registry_names_and_target_flags():
    assert set(LOSSES) == {
        "minimax",
        "nonsaturating",
        "wasserstein",
        "hinge",
        "least_squares",
        "relativistic_average",
        "relativistic_pairing",
    }
    assert not LOSSES["wasserstein"].uses_targets and not LOSSES["hinge"].uses_targets
    assert LOSSES["least_squares"].uses_targets


def test_unknown_loss_is_one_sentence_listing_choices():
    with pytest.raises(ConfigError, match="loss must be one of minimax, nonsaturating"):
        get_loss("vanilla")


def test_combining_losses_of_several_discriminators():
    losses = torch.tensor([1.0, 3.0], requires_grad=True)
    assert combine_discriminator_losses(losses, "mean").item() == pytest.approx(2.0)
    assert combine_discriminator_losses(losses, "max").item() == pytest.approx(3.0)
    soft = combine_discriminator_losses(losses, "softmax", temperature=1.0)
    weights = torch.softmax(torch.tensor([1.0, 3.0]), 0)
    assert soft.item() == pytest.approx(float((weights * torch.tensor([1.0, 3.0])).sum()))
    # The weights are constants of the backward pass: d soft / d loss_i = weight_i.
    soft.backward()
    assert torch.allclose(losses.grad, weights)
    # Temperature to 0 approaches the max, to infinity the mean.
    cold = combine_discriminator_losses(losses.detach(), "softmax", temperature=1e-3)
    hot = combine_discriminator_losses(losses.detach(), "softmax", temperature=1e3)
    assert cold.item() == pytest.approx(3.0, abs=1e-3) and hot.item() == pytest.approx(
        2.0, abs=1e-2
    )
    with pytest.raises(ConfigError, match="reduction"):
        combine_discriminator_losses(losses, "median")
