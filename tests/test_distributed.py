"""DDP on two CPU processes (gloo), through the real `gan-tricks fit` and Lightning's launcher.

Each test runs the command in a subprocess (Lightning's DDP launcher re-runs the command line in
its child processes, so it cannot run inside pytest's own process), with
``support.rank_state.RankStateDump`` (tests/support) writing what every rank holds at the end.
The single process runs use the same *global* batch: N processes of batch B against one of
batch N*B.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from gan_tricks import distributed, lightning
from gan_tricks.monitors import read_alarms

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "recipes" / "digits.yaml"
STEPS = 10


# ---------------------------------------------------------------- in one process
def test_the_helpers_leave_a_single_process_alone():
    layer = torch.nn.Linear(3, 2)
    layer(torch.randn(4, 3)).sum().backward()
    grad = layer.weight.grad.clone()
    values = {"d_loss": torch.tensor(0.5)}
    assert distributed.average_gradients(layer.parameters(), values) is values
    assert torch.equal(layer.weight.grad, grad)
    batch = torch.randn(6, 2)
    assert distributed.rank_slice(batch) is batch
    state = torch.get_rng_state()
    distributed.seed_ranks_apart()
    assert torch.equal(torch.get_rng_state(), state)
    assert distributed.world() == (0, 1)


@pytest.mark.parametrize(
    ("env", "owner"),
    [({}, True), ({"LOCAL_RANK": "0", "NODE_RANK": "0"}, True), ({"LOCAL_RANK": "1"}, False),
     ({"RANK": "3"}, False), ({"NODE_RANK": "1", "LOCAL_RANK": "0"}, False),
     ({"SLURM_PROCID": "2"}, False)],
)  # fmt: skip
def test_only_the_first_process_of_a_launch_owns_the_run_folder(monkeypatch, env, owner):
    for name in distributed.RANK_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert distributed.is_launched_rank_zero() is owner


def test_cross_rank_batchnorm_swaps_in_and_out_sharing_the_parameters():
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(),
        torch.nn.Linear(4 * 6 * 6, 8), torch.nn.BatchNorm1d(8),
    )  # fmt: skip
    x = torch.randn(5, 1, 8, 8)
    expected = model(x)  # a training-mode step: running statistics move
    weight, running_mean = model[1].weight, model[1].running_mean.clone()
    synced = lightning.CrossRankSyncBatchNorm().apply(model)
    assert type(synced[1]) is distributed.CrossRankBatchNorm2d
    assert type(synced[4]) is distributed.CrossRankBatchNorm1d
    assert synced[1].weight is weight and torch.equal(synced[1].running_mean, running_mean)
    # One process: plain BatchNorm, in training and in eval mode.
    model_copy = lightning.CrossRankSyncBatchNorm().revert(synced)
    assert type(model_copy[1]) is torch.nn.BatchNorm2d
    assert type(model_copy[4]) is torch.nn.BatchNorm1d
    torch.testing.assert_close(synced.eval()(x), model_copy.eval()(x))
    assert expected.shape == (5, 8)


# ---------------------------------------------------------------- two processes
def fit(
    tmp_path: Path,
    name: str,
    configs: list[Path],
    processes: int,
    global_batch: int,
    *options: str,
    tricks: list[dict] | None = None,
    detectors: list[dict] | None = None,
) -> list[dict]:
    """Run `gan-tricks fit` on ``processes`` CPU processes; every rank's dumped state."""
    dump = tmp_path / name
    overlay = tmp_path / f"{name}.yaml"
    dumper = {"class_path": "support.rank_state.RankStateDump", "init_args": {"folder": str(dump)}}
    added = {"tricks+": tricks or [], "detectors+": detectors or []}
    config = {"trainer": {"callbacks+": [dumper]}}
    if model := {key: value for key, value in added.items() if value}:
        config["model"] = model
    overlay.write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "gan_tricks.cli", "fit"]
    for config in [*configs, overlay]:
        command += ["--config", str(config)]
    command += [
        "--trainer.accelerator", "cpu",
        "--trainer.devices", str(processes),
        "--data.init_args.batch_size", str(global_batch // processes),
        "--trainer.max_steps", str(STEPS),
        "--trainer.enable_progress_bar", "false",
        "--trainer.default_root_dir", str(tmp_path / "runs"),
        "--name", name,
        "--wandb", "off",
    ]  # fmt: skip
    if processes > 1:
        command += ["--trainer.strategy", "ddp"]
    command += list(options)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    # The rank dumper lives with the tests (tests/support), not in the package.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "tests"), env.get("PYTHONPATH")]))
    result = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return [torch.load(dump / f"rank{r}.pt", weights_only=False) for r in range(processes)]


def assert_ranks_identical(states: list[dict], keys=("generator", "discriminator")) -> None:
    """Every rank holds bit-identical networks (weights and buffers)."""
    first, *others = states
    for other in others:
        for key in keys:
            for name, value in first[key].items():
                assert torch.equal(value, other[key][name]), f"{key}.{name} differs across ranks"


def assert_same_state(a, b, where: str) -> None:
    """Two callback states (nested dicts and lists of tensors and plain values) are equal."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_same_state(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_state(x, y, f"{where}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b), f"{where} differs across ranks"
    else:
        assert a == b or (a != a and b != b), f"{where} differs across ranks"  # NaN == NaN


def assert_same_function(one: dict, two: dict, atol: float = 1e-5) -> None:
    """Same outputs of G and D, same weights (biases that BatchNorm cancels aside: they move on
    rounding noise alone), same last signals."""
    torch.testing.assert_close(two["fake"], one["fake"], atol=atol, rtol=0)
    torch.testing.assert_close(two["logits"], one["logits"], atol=atol * 10, rtol=1e-5)
    for key in ("generator", "discriminator"):
        for name, value in one[key].items():
            if name.endswith("weight"):
                torch.testing.assert_close(two[key][name], value, atol=1e-6, rtol=1e-5)
    for name, value in one["signals"].items():
        assert two["signals"][name] == pytest.approx(value, rel=1e-4, abs=1e-6), name


def test_two_processes_match_one_process_of_the_same_global_batch(tmp_path):
    # The digits DCGAN, BatchNorm in G and D: with --trainer.sync_batchnorm (a CPU-capable
    # cross-rank BatchNorm here, torch's SyncBatchNorm refusing CPU tensors), 2 x 16 is 1 x 32.
    sync = ("--trainer.sync_batchnorm", "true")
    one = fit(tmp_path, "one", [DIGITS], 1, 32, *sync)
    two = fit(tmp_path, "two", [DIGITS], 2, 32, *sync)
    assert two[0]["global_step"] == one[0]["global_step"] == STEPS
    assert_ranks_identical(two)
    assert_same_function(one[0], two[0])


def test_gradient_penalty_and_spectral_norm_match_one_process(tmp_path):
    # R1's double backward under DDP: the gradients D's optimizer sees on the first step (after
    # averaging over the ranks) are those of one process; spectral norm's power-iteration
    # vectors stay identical across ranks and equal to one process's.
    tricks = [
        {"class_path": "gan_tricks.tricks.GradientPenalty", "init_args": {"kind": "r1"}},
        {"class_path": "gan_tricks.tricks.SpectralNorm", "init_args": {"discriminator": True}},
    ]
    # D without BatchNorm, as R1 recipes have it; G's BatchNorm synchronised.
    options = ("--model.discriminator.init_args.norm", "none", "--trainer.sync_batchnorm", "true")
    one = fit(tmp_path, "one", [DIGITS], 1, 32, *options, tricks=tricks)
    two = fit(tmp_path, "two", [DIGITS], 2, 32, *options, tricks=tricks)
    d_first, g_first = one[0]["first_gradients"]
    assert any("parametrizations" in name for name in d_first), "spectral norm is not on D"
    for rank_state in two:
        for expected, got in zip((d_first, g_first), rank_state["first_gradients"]):
            assert got.keys() == expected.keys()
            for name, grad in expected.items():
                # atol: a bias that BatchNorm cancels has a gradient of rounding noise alone.
                torch.testing.assert_close(got[name], grad, atol=1e-6, rtol=1e-3)
    assert one[0]["signals"]["d_penalty/GradientPenalty"] > 0
    assert_ranks_identical(two)
    singular_vectors = [k for k in one[0]["discriminator"] if k.endswith(("_u", "_v"))]
    assert singular_vectors
    for name in singular_vectors:
        torch.testing.assert_close(two[0]["discriminator"][name], one[0]["discriminator"][name])
    assert_same_function(one[0], two[0])


def test_g_and_d_steps_keep_ranks_identical_without_unused_parameter_search(tmp_path):
    # Plain `ddp` (find_unused_parameters off), two D steps per G step, BatchNorm without sync:
    # every rank ends with the same weights and the same (averaged) running statistics.
    two = fit(tmp_path, "two", [DIGITS], 2, 32, "--model.n_critic", "2")
    assert two[0]["signals"]["d_steps"] == 2
    assert_ranks_identical(two)
    assert two[0]["signals"] == two[1]["signals"]


def test_toy_mixture_stream_shards_like_one_process(tmp_path):
    grid25 = ROOT / "recipes" / "grid25.yaml"
    one = fit(tmp_path, "one", [grid25], 1, 64)
    two = fit(tmp_path, "two", [grid25], 2, 64)
    assert_ranks_identical(two)
    assert_same_function(one[0], two[0])


def test_ema_replay_and_detectors_behave_alike_on_every_rank_and_write_once(tmp_path):
    high_lr = ROOT / "recipes" / "failures" / "digits_high_lr.yaml"
    quick = {"warmup": 2, "cooldown": 5}
    detectors = ("DiscriminatorOverpowering", "ModeCollapse", "GradientPathology", "NonFinite")
    settings = {name: quick for name in detectors}
    settings["DiscriminatorOverpowering"] = {**quick, "window": 10}
    # An alarm every few steps, whatever the tricks make of the run: a threshold it crosses.
    settings["GradientPathology"] = {**quick, "exploding_above": 0.01, "vanishing_below": 0.0}
    watching = [
        {"class_path": f"gan_tricks.monitors.{name}", "init_args": settings[name]}
        for name in detectors
    ]
    tricks = [
        {"class_path": "gan_tricks.tricks.GeneratorEMA", "init_args": {"decay": 0.9}},
        {"class_path": "gan_tricks.tricks.ExperienceReplay", "init_args": {"capacity": 200}},
        # Tricks whose state follows D's outputs: the same on every rank only if the ranks
        # share them (LeCam's anchors, ADA's r_t and p).
        {"class_path": "gan_tricks.tricks.LeCam"},
        {"class_path": "gan_tricks.tricks.AdaptiveAugment", "init_args": {"interval": 2}},
    ]
    two = fit(
        tmp_path, "two", [high_lr], 2, 32, "--trainer.max_steps", "40",
        tricks=tricks, detectors=watching,
    )  # fmt: skip
    assert_ranks_identical(two, keys=("generator", "discriminator", "generator_ema"))
    rank0, rank1 = (state["engine"] for state in two)
    # Each rank replays its own fakes, on the same schedule: buffers of equal size, not copies.
    replay0, replay1 = rank0["ExperienceReplay"]["buffer"], rank1["ExperienceReplay"]["buffer"]
    assert replay0["seen"] == replay1["seen"] > 0
    assert replay0["storage"].shape == replay1["storage"].shape
    assert not torch.equal(replay0["storage"], replay1["storage"])
    for name in (*detectors, "LeCam", "AdaptiveAugment"):
        assert_same_state(rank0[name], rank1[name], name)
    assert rank0["AdaptiveAugment"]["p"] > 0, "ADA's p never moved: nothing compared"
    raised = sum(len(rank0[name]["alarms"]) for name in detectors)
    assert raised > 0, "no alarm was raised to compare"
    # Rank 0 alone writes: each alarm once in alarms.jsonl, one run folder.
    assert len(read_alarms(tmp_path / "runs" / "two")) == raised
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["two"]


def test_resumed_two_process_run_repeats_the_uninterrupted_one(tmp_path):
    # Instance noise draws from each rank's own global generator: the checkpoint must hold every
    # rank's generator state, and each rank must get its own back.
    noise = [
        {
            "class_path": "gan_tricks.tricks.InstanceNoise",
            "init_args": {"sigma": 0.2, "schedule": "constant"},
        }
    ]
    whole = fit(tmp_path, "whole", [DIGITS], 2, 32, tricks=noise)
    fit(tmp_path, "parts", [DIGITS], 2, 32, "--trainer.max_steps", "4", tricks=noise)
    resumed = fit(tmp_path, "parts", [DIGITS], 2, 32, "--ckpt_path", "last", tricks=noise)
    assert resumed[0]["global_step"] == STEPS
    for got, expected in zip(resumed, whole):
        for key in ("generator", "discriminator"):
            for name, value in expected[key].items():
                assert torch.equal(got[key][name], value), f"{key}.{name} differs after resume"
