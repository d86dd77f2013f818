"""The ground truth the detectors are scored against: sample quality measured during a fit.

A Lightning callback, not a detector: it needs the run's data module (its ground truth) and
``gan_tricks.run.evaluate_samples``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.utilities import rank_zero_only

from gan_tricks.engine.recorder import EVALUATION_FILE, QUALITY_FILE
from gan_tricks.errors import ConfigError


class QualityProbe(pl.Callback):
    """Measures the samples every ``every`` iterations with ``gan-tricks evaluate``'s metrics.

    On the 2D mixtures that is exact: modes covered, high-quality share and reverse KL
    (PacGAN's protocol); on the digits, classes or stacked-digit modes covered and the reverse
    KL by the digit classifier. Each measurement is a line of ``quality.jsonl`` in the run
    folder (``step`` plus the metrics; see :func:`read_quality`) and goes to the loggers as
    ``quality/<metric>``. Samples are drawn with a fixed seed from the generator used for
    sampling (the EMA copy when there is one), in eval mode, without touching the global RNG.

    Not a detector: it needs the data's ground truth, which a real data set lacks. It is what
    the failure zoo (``benchmarks/failure_zoo.py``) scores the detectors against, and a cheap
    progress curve on the built-in data.

    Args:
        every: iterations between two measurements.
        num_samples: samples per measurement; None takes the evaluation protocol's count
            (2,500 on the 2D mixtures, 26,000 on stacked digits, which is slow every few hundred
            steps: 2,600 are plenty to see a failure).
        seed: the seed of the latent draws, the same at every measurement.
        features: also FID, KID, precision / recall and density / coverage in the digit
            feature space (digits and stacked digits), a few seconds per measurement on a CPU.
        final_evaluation: at the end of the fit, also write ``gan-tricks evaluate``'s whole
            protocol (its sample count, feature metrics, seed 0) to ``evaluation.json`` in the
            run folder, in the fit's own process: what the ablation runner reads, instead of
            starting a process that loads the checkpoint again.
    """

    def __init__(
        self,
        every: int = 250,
        num_samples: int | None = None,
        seed: int = 0,
        features: bool = False,
        final_evaluation: bool = False,
    ) -> None:
        if every < 1 or (num_samples is not None and num_samples < 2):
            raise ConfigError(
                f"QualityProbe needs every >= 1 and num_samples >= 2 (got {every}, {num_samples})."
            )
        self.every = every
        self.num_samples = num_samples
        self.seed = seed
        self.features = features
        self.final_evaluation = final_evaluation

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if step % self.every == 0:
            self.measure(trainer, pl_module, step)

    def on_train_end(self, trainer, pl_module) -> None:
        if trainer.global_step % self.every:  # the last state is measured too
            self.measure(trainer, pl_module, trainer.global_step)
        if self.final_evaluation:
            self.evaluate(trainer, pl_module)

    @rank_zero_only
    def evaluate(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        from gan_tricks.run import evaluate_samples  # run.py builds on the adapter

        metrics = evaluate_samples(module, trainer.datamodule)
        metrics["step"] = trainer.global_step
        run_dir = Path(trainer.default_root_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / EVALUATION_FILE).write_text(json.dumps(metrics) + "\n")

    @rank_zero_only
    def measure(self, trainer: pl.Trainer, module: pl.LightningModule, step: int) -> None:
        from gan_tricks.run import evaluate_samples  # run.py builds on the adapter

        # NaN samples are measured too: off every mode in 2D, unreadable digits on images.
        metrics = evaluate_samples(
            module,
            trainer.datamodule,
            self.num_samples,
            self.seed,
            feature_metrics=self.features,
        )
        numbers = {
            key: float(value)
            for key, value in metrics.items()
            if isinstance(value, int | float) and key not in ("seed", "wall_time_s")
        }
        finite = {k: v for k, v in numbers.items() if math.isfinite(v)}
        for logger in trainer.loggers:
            logger.log_metrics({f"quality/{k}": v for k, v in finite.items()}, step=step)
        run_dir = Path(trainer.default_root_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        with open(run_dir / QUALITY_FILE, "a") as handle:
            handle.write(json.dumps({"step": step, **numbers}) + "\n")


def read_quality(run_dir: str | Path) -> list[dict[str, Any]]:
    """The measurements a :class:`QualityProbe` wrote to the run's ``quality.jsonl``."""
    path = Path(run_dir) / QUALITY_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
