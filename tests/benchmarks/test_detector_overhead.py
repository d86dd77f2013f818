"""benchmarks/detector_overhead.py: detectors switched off in every other block."""

import json

from gan_tricks.monitors import Detector
from gan_tricks.testing import fit_briefly, tiny_gan_module


class Counting(Detector):
    def __init__(self):
        super().__init__(warmup=0)
        self.seen = []

    def check(self, step, signals):
        self.seen.append(step)


def test_detectors_run_only_in_every_other_block_and_every_step_is_timed(overhead, tmp_path):
    detector = Counting()
    timer = overhead.InterleavedDetectors(block=2, output=str(tmp_path / "times.json"))
    fit_briefly(tiny_gan_module(detectors=[detector]), 8, [timer], default_root_dir=tmp_path)
    # Iterations 2, 3, 6 and 7 (0-based) have detectors on; each sees the step it ends at.
    assert detector.seen == [3, 4, 7, 8]
    record = json.loads((tmp_path / "times.json").read_text())
    times = record["steps"]
    assert [(step, on) for step, on, _ in times] == [(i, (i // 2) % 2 == 1) for i in range(8)]
    assert all(seconds > 0 for _, _, seconds in times)
    # The detector's own methods were timed on its 4 iterations, and is part of their time.
    on_time = sum(seconds for _, on, seconds in times if on)
    assert 0 < record["hook_seconds"]["Counting"] < on_time


def test_block_ratios_pair_each_off_block_with_the_next_and_skip_the_first_pair(overhead):
    times = [(i, (i // 2) % 2 == 1, 1.0 if (i // 2) % 2 == 0 else 1.1) for i in range(12)]
    times[0] = (0, False, 50.0)  # a warm-up step that must not count
    ratios = overhead.block_ratios(times, block=2)
    assert len(ratios) == 2 and all(abs(r - 1.1) < 1e-9 for r in ratios)
