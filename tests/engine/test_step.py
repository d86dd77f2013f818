"""The adversarial iteration of GANEngine: every trick is called at every hook point, in
order, in a plain loop without Lightning."""

import copy

import pytest
import torch
from torch import nn

from gan_tricks.engine import SIGNALS, GANEngine, Networks, StepContext, StepSignals
from gan_tricks.errors import ConfigError
from gan_tricks.functional import Latent, get_loss
from gan_tricks.models import MLPDiscriminator, MLPGenerator
from gan_tricks.tricks import Trick

BATCH = 16


def tiny_engine(*, tricks=(), detectors=(), seed=0, discriminator=None, **options) -> GANEngine:
    torch.manual_seed(seed)
    generator = MLPGenerator(latent_dim=2, out_dim=2, width=16, depth=2)
    default_d = MLPDiscriminator(in_dim=2, width=16, depth=2)
    return GANEngine(
        generator,
        discriminator or default_d,
        lambda p: torch.optim.Adam(p, lr=1e-3),
        lambda p: torch.optim.Adam(p, lr=1e-3),
        latent=Latent(dim=2),
        tricks=list(tricks),
        detectors=list(detectors),
        **options,
    )


def run(engine: GANEngine, steps: int, seed: int = 0) -> list[StepSignals]:
    data = torch.Generator().manual_seed(seed)
    return [engine.step(torch.randn(BATCH, 2, generator=data)) for _ in range(steps)]


class Recorder(Trick):
    """Records every hook call and what the context held; optionally asks for more D steps."""

    def __init__(self, d_steps_wanted: int = 0):
        self.calls: list[str] = []
        self.steps: list[int] = []
        self.d_steps_wanted = d_steps_wanted

    def wants_more_d_steps(self, ctx, d_steps_done, d_loss):
        self.calls.append("wants_more_d_steps")
        return d_steps_done < self.d_steps_wanted

    def transform_real(self, ctx, real):
        self.calls.append(f"transform_real:{ctx.phase}")
        self.steps.append(ctx.step)
        return real

    def transform_fake(self, ctx, fake):
        self.calls.append(f"transform_fake:{ctx.phase}")
        return fake

    def targets(self, ctx, real_target, fake_target):
        self.calls.append("targets")
        return real_target, fake_target

    def d_penalty(self, ctx):
        assert ctx.phase == "d" and ctx.real_logits is not None and ctx.fake_logits is not None
        self.calls.append("d_penalty")

    def g_penalty(self, ctx):
        assert ctx.phase == "g" and ctx.z is not None and ctx.g_output is not None
        self.calls.append("g_penalty")

    def after_d_step(self, ctx):
        self.calls.append("after_d_step")

    def after_g_step(self, ctx):
        self.calls.append("after_g_step")

    def observe(self, ctx, signals):
        assert isinstance(signals, StepSignals)
        self.calls.append("observe")


D_STEP = [
    "transform_real:d",
    "transform_fake:d",
    "targets",
    "d_penalty",
    "after_d_step",
    "wants_more_d_steps",
]
G_STEP = ["transform_fake:g", "g_penalty", "after_g_step", "observe"]


def test_every_hook_is_called_in_order_with_n_critic():
    recorder = Recorder()
    engine = tiny_engine(tricks=[recorder], n_critic=2)
    run(engine, 1)
    assert recorder.calls == D_STEP * 2 + G_STEP
    assert engine.iteration == 1


def test_ctx_step_is_the_iteration_index_in_every_hook():
    recorder = Recorder()
    run(tiny_engine(tricks=[recorder], n_critic=2), 3)
    assert recorder.steps == [0, 0, 1, 1, 2, 2]


def test_a_trick_can_ask_for_more_discriminator_steps():
    recorder = Recorder(d_steps_wanted=3)
    signals = run(tiny_engine(tricks=[recorder]), 2)
    assert recorder.calls.count("after_d_step") == 6
    assert signals[-1].d_steps == 3


def test_every_trick_is_called_and_all_signals_recorded():
    first, second = Recorder(), Recorder()
    (signals,) = run(tiny_engine(tricks=[first, second]), 1)
    assert first.calls == second.calls == D_STEP + G_STEP
    flat = signals.as_dict()
    assert set(SIGNALS) <= set(flat)
    assert all(torch.isfinite(torch.as_tensor(v)) for v in flat.values())
    assert signals.g_grad_norm > 0 and signals.d_grad_norm > 0


def test_gradient_norms_only_on_logging_steps_unless_asked():
    engine = tiny_engine()
    real = torch.randn(BATCH, 2)
    quiet = engine.step(real, logging_step=False)
    assert quiet.d_grad_norm is None and quiet.g_grad_norm is None
    assert engine.step(real, logging_step=True).d_grad_norm is not None
    always = tiny_engine(gradient_norms=True)
    assert always.step(real, logging_step=False).g_grad_norm is not None


class SwapTargetsAndPenalise(Trick):
    """Swaps D's targets and adds a constant penalty; keeps D's logits to recompute the loss."""

    def targets(self, ctx, real_target, fake_target):
        self.swapped = (fake_target + 0.25, real_target - 0.25)
        return self.swapped

    def d_penalty(self, ctx):
        self.logits = (ctx.real_logits.detach(), ctx.fake_logits.detach())
        return torch.tensor(5.0)

    def g_penalty(self, ctx):
        self.g_logits = ctx.fake_logits.detach()
        return torch.tensor(2.0)


def test_targets_and_penalties_reach_the_losses():
    trick = SwapTargetsAndPenalise()
    (signals,) = run(tiny_engine(tricks=[trick], loss="nonsaturating"), 1)
    real_logits, fake_logits = trick.logits
    loss = get_loss("nonsaturating")
    expected_d = loss.d_loss(real_logits, fake_logits, *trick.swapped) + 5.0
    assert signals.d_loss.item() == pytest.approx(expected_d.item(), rel=1e-5)
    assert signals.d_penalties["SwapTargetsAndPenalise"].item() == 5.0
    expected_g = loss.g_loss(trick.g_logits) + 2.0
    assert signals.g_loss.item() == pytest.approx(expected_g.item(), rel=1e-5)


class ConstantPenalty(Trick):
    """Adds ``value`` to D's loss on the D steps where ``step % every == 0``."""

    def __init__(self, value: float, every: int = 1):
        self.value, self.every, self.calls = value, every, 0

    def d_penalty(self, ctx):
        self.calls += 1
        return torch.tensor(self.value) if (self.calls - 1) % self.every == 0 else None


def test_two_tricks_of_one_class_both_count_under_numbered_names():
    (signals,) = run(tiny_engine(tricks=[ConstantPenalty(3.0), ConstantPenalty(4.0)]), 1)
    assert signals.as_dict()["d_penalty/ConstantPenalty"].item() == 3.0
    assert signals.as_dict()["d_penalty/ConstantPenalty_2"].item() == 4.0


def test_a_skipped_penalty_reads_zero_not_its_last_value():
    signals = run(tiny_engine(tricks=[ConstantPenalty(3.0, every=2)]), 2)
    assert signals[0].d_penalties["ConstantPenalty"].item() == 3.0
    assert signals[1].d_penalties["ConstantPenalty"].item() == 0.0


class BatchProbe(nn.Module):
    """A BatchNorm discriminator that records the batches it is given."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.BatchNorm1d(2), nn.Linear(2, 1))
        self.seen: list[torch.Tensor] = []

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return self.net(x)


class MarkReal(Trick):
    def transform_real(self, ctx, real):
        return torch.full_like(real, 100.0)


@pytest.mark.parametrize("separate", [True, False])
def test_batchnorm_sees_real_only_and_fake_only_batches_unless_mixed(separate):
    probe = BatchProbe()
    engine = tiny_engine(tricks=[MarkReal()], discriminator=probe, separate_batches=separate)
    run(engine, 1)
    d_step_batches = probe.seen[:-1] if separate else probe.seen[:1]
    if separate:
        real_batch, fake_batch = d_step_batches
        assert len(real_batch) == len(fake_batch) == BATCH
        assert torch.all(real_batch == 100.0) and not torch.any(fake_batch == 100.0)
    else:
        (mixed,) = d_step_batches
        assert len(mixed) == 2 * BATCH
        assert torch.all(mixed[:BATCH] == 100.0) and not torch.any(mixed[BATCH:] == 100.0)


def test_relativistic_loss_shows_real_batch_in_generator_step():
    probe = BatchProbe()
    run(tiny_engine(discriminator=probe, loss="relativistic_average"), 1)
    assert len(probe.seen) == 4  # D step: real, fake; G step: real, fake


def test_generator_step_does_not_touch_discriminator_gradients():
    class CheckGrads(Trick):
        def after_d_step(self, ctx):
            self.after_d = [p.grad.clone() for p in ctx.discriminator.parameters()]

        def after_g_step(self, ctx):
            self.after_g = [p.grad.clone() for p in ctx.discriminator.parameters()]
            self.d_requires_grad = [p.requires_grad for p in ctx.discriminator.parameters()]

    check = CheckGrads()
    run(tiny_engine(tricks=[check]), 1)
    assert all(torch.equal(a, b) for a, b in zip(check.after_d, check.after_g))
    assert all(check.d_requires_grad)  # restored after the G step


def test_the_step_matches_a_loop_written_with_torch_alone():
    """The engine's iteration is the textbook one: same weights, bit for bit."""
    engine = tiny_engine()
    torch.manual_seed(0)
    generator = MLPGenerator(latent_dim=2, out_dim=2, width=16, depth=2)
    discriminator = MLPDiscriminator(in_dim=2, width=16, depth=2)
    opt_g = torch.optim.Adam(generator.parameters(), lr=1e-3)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=1e-3)
    codes = torch.Generator().manual_seed(engine.latent_seed)
    loss = get_loss("nonsaturating")
    data = torch.Generator().manual_seed(0)
    for _ in range(5):
        real = torch.randn(BATCH, 2, generator=data)
        engine.step(real)
        with torch.no_grad():
            fake = generator(torch.randn(BATCH, 2, generator=codes))
        d_loss = loss.d_loss(discriminator(real), discriminator(fake))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        discriminator.requires_grad_(False)
        g_loss = loss.g_loss(discriminator(generator(torch.randn(BATCH, 2, generator=codes))))
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        discriminator.requires_grad_(True)
    for ours, theirs in zip(
        engine.networks.parameters(),
        [*generator.parameters(), *discriminator.parameters()],
        strict=True,
    ):
        assert torch.equal(ours, theirs)


def test_state_dict_resumes_bit_for_bit():
    engine = tiny_engine(tricks=[ConstantPenalty(1.0)])
    run(engine, 3, seed=1)
    saved = copy.deepcopy(engine.state_dict())  # state_dict() holds the live tensors
    run(engine, 4, seed=2)
    resumed = tiny_engine(tricks=[ConstantPenalty(1.0)], seed=5)  # other initial weights
    resumed.load_state_dict(saved)
    assert resumed.iteration == 3
    run(resumed, 4, seed=2)
    for ours, theirs in zip(
        engine.networks.state_dict().values(), resumed.networks.state_dict().values()
    ):
        assert torch.equal(ours, theirs)
    for ours, theirs in zip(
        engine.d_optimizer.state_dict()["state"].values(),
        resumed.d_optimizer.state_dict()["state"].values(),
    ):
        assert torch.equal(ours["exp_avg"], theirs["exp_avg"])


def test_a_checkpoint_of_another_tricks_list_is_one_sentence():
    saved = tiny_engine(tricks=[ConstantPenalty(1.0)]).state_dict()
    with pytest.raises(ConfigError, match="holds the state of trick ConstantPenalty"):
        tiny_engine().load_state_dict(saved)


def test_optimizers_may_be_instances_built_on_the_networks():
    torch.manual_seed(0)
    generator, discriminator = nn.Linear(2, 2), nn.Linear(2, 1)
    engine = GANEngine(
        generator,
        discriminator,
        torch.optim.SGD(generator.parameters(), lr=0.1),
        torch.optim.SGD(discriminator.parameters(), lr=0.1),
        latent=Latent(dim=2),
    )
    before = generator.weight.detach().clone()
    engine.step(torch.randn(8, 2))
    assert not torch.equal(before, generator.weight)


def test_no_optimizer_is_one_sentence():
    engine = GANEngine(nn.Linear(2, 2), nn.Linear(2, 1), latent=Latent(dim=2))
    with pytest.raises(ConfigError, match="no optimizers"):
        engine.step(torch.randn(8, 2))


@pytest.mark.parametrize(
    ("options", "match"),
    [({"n_critic": 0}, "n_critic"), ({"d_reduction": "median"}, "d_reduction")],
)
def test_bad_settings_are_one_sentence(options, match):
    with pytest.raises(ConfigError, match=match):
        tiny_engine(**options)


def test_sample_is_seeded_and_restores_train_mode():
    engine = tiny_engine()
    a, b = engine.sample(10, seed=3), engine.sample(10, seed=3)
    assert torch.equal(a, b) and a.shape == (10, 2)
    assert engine.generator.training


def test_schedulers_step_once_per_iteration():
    engine = tiny_engine()
    scheduler = torch.optim.lr_scheduler.StepLR(engine.g_optimizer, step_size=1, gamma=0.5)
    engine.attach_optimizers(engine.g_optimizer, engine.d_optimizer, [scheduler])
    run(engine, 3)
    assert engine.g_optimizer.param_groups[0]["lr"] == pytest.approx(1e-3 * 0.5**3)


def test_the_context_is_typed_and_names_the_networks():
    engine = tiny_engine()
    ctx = engine.context
    assert isinstance(ctx, StepContext) and isinstance(engine.networks, Networks)
    assert ctx.generator is engine.generator and ctx.discriminator is engine.discriminator
    assert ctx.generator_ema is None
