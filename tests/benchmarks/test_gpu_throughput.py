"""benchmarks/gpu_throughput.py: the GPU check, run here on the CPU with its --device cpu."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_throughput.py"


def test_the_cpu_smoke_run_times_each_arm_and_finds_the_penalty_exact_under_bf16(tmp_path):
    out = tmp_path / "gpu"
    arms = "32-true,bf16-mixed + R1 every 4"
    command = [sys.executable, str(SCRIPT), "--device", "cpu", "--batch", "4", "--steps", "2"]
    command += ["--warmup", "1", "--arms", arms, "--out", str(out)]
    subprocess.run(
        command, check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    report = json.loads(out.with_suffix(".json").read_text())
    assert list(report["images_per_second"]) == arms.split(",")
    assert all(rate > 0 for rate in report["images_per_second"].values())
    # The penalty's pass runs with autocast off: bf16 autocast gives the fp32 R1 exactly.
    assert report["r1_relative_difference_under_autocast"] == {"bf16": 0.0}
    table = out.with_suffix(".md").read_text()
    assert "| 32-true | " in table and "CPU (smoke test)" in table


def test_the_cpu_has_no_half_precision_arms(gpu_throughput):
    assert not any("16-mixed" in name and "bf16" not in name for name in gpu_throughput.arms("cpu"))
    assert "16-mixed + R1 every 4" in gpu_throughput.arms("cuda")


@pytest.mark.skipif(
    torch.cuda.is_available(), reason="checks the message of a machine without CUDA"
)
def test_without_cuda_the_gpu_run_ends_in_one_sentence():
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stdout.strip() == (
        "No CUDA device is visible; run this on a GPU machine (or pass --device cpu)."
    )
