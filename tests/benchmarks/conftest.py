"""The scripts of benchmarks/, imported as modules for their tests."""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and Lightning's class_path look modules up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def zoo():
    return load_script("failure_zoo")


@pytest.fixture(scope="session")
def overhead():
    return load_script("detector_overhead")


@pytest.fixture(scope="session")
def gpu_throughput():
    return load_script("gpu_throughput")
