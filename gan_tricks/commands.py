"""What the ``gan-tricks`` command runs: ``fit`` (LightningCLI), ``sample``, ``evaluate``,
``report``, ``export`` and ``ablate``. Imported only once a command runs (``gan_tricks.cli``
answers ``--help``, ``--version`` and ``recipes`` without torch or Lightning)."""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import logging
import math
import os
import re
import shutil
import signal
import socket
import sys
import threading
import time
import urllib.parse
import warnings
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import yaml
from jsonargparse import ArgumentError
from lightning_fabric.plugins import CheckpointIO
from pytorch_lightning.callbacks import ProgressBar
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from pytorch_lightning.loggers import WandbLogger
from pytorch_lightning.utilities.exceptions import SIGTERMException

from gan_tricks.checkpointing import (
    AtomicCheckpointIO,
    RandomStates,
    load_checkpoint_file,
    load_resumable_checkpoint,
)
from gan_tricks.distributed import is_launched_rank_zero
from gan_tricks.errors import ConfigError
from gan_tricks.experiments.ablation import ablate_command
from gan_tricks.export import export_generator, load_generator, sample_exported
from gan_tricks.history import MetricsLogger, RunHistory
from gan_tricks.lightning import CrossRankSyncBatchNorm, GANModule
from gan_tricks.lightning.progress import StepProgressBar
from gan_tricks.packaged import find_recipe
from gan_tricks.paths import (
    check_output_file,
    check_run_name,
    check_writable_folder,
    write_atomically,
)
from gan_tricks.resume import SECTIONS as RESUME_SECTIONS
from gan_tricks.resume import AppliedChanges, check_changes, check_weights_fit, setting_changes
from gan_tricks.run import (
    LAST_CHECKPOINT,
    RUN_CONFIG_KEY,
    EmbedRunConfig,
    LastCheckpoint,
    RunArtifacts,
    evaluate_samples,
    load_run,
    save_samples,
)
from gan_tricks.trust import safe_yaml


class GANTricksCLI(LightningCLI):
    """LightningCLI with one folder per run, W&B that falls back to offline, and pictures.

    ``folders`` is the caller's record of the run folder this fit created (and of the earlier
    run it replaced), so that a fit that fails before training starts can leave the disk as it
    found it (:func:`fit_command`).
    """

    def __init__(self, *args: Any, folders: RunFolders, **kwargs: Any) -> None:
        self.folders = folders
        super().__init__(*args, **kwargs)

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        # The GAN module trains only; validate/test/predict have no meaning for it yet.
        return {"fit": {"model", "train_dataloaders", "val_dataloaders", "datamodule"}}

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument(
            "--name",
            type=str | None,
            default=None,
            help="Run folder name under trainer.default_root_dir (default: recipe name and time).",
        )
        parser.add_argument(
            "--wandb",
            type=str,
            default="auto",
            help="W&B logging: auto (online with credentials, else offline), online, offline, off.",
        )
        parser.add_argument(
            "--overwrite",
            type=bool,
            default=False,
            help="Replace an existing run folder: its contents are deleted before the run starts.",
        )
        parser.add_argument(
            "--checkpoint_every",
            type=int,
            default=500,
            help="Write checkpoints/last.ckpt every N iterations (and when training ends).",
        )
        parser.add_argument(
            "--resume_changes",
            type=bool,
            default=False,
            help="With --ckpt_path: apply settings that differ from the checkpoint's run (a "
            "new learning rate reaches the optimizers). Without it such a resume is refused; "
            "max_steps, logging and detectors' actions change freely.",
        )
        parser.set_defaults({"trainer.default_root_dir": "runs"})

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand]
        if config.wandb not in WANDB_MODES:
            raise ConfigError(
                f"--wandb must be one of {', '.join(WANDB_MODES)} (got {config.wandb!r})."
            )
        if config.name is not None:
            check_run_name(config.name)
        check_writable_folder(
            Path(config.trainer.default_root_dir or "runs"),
            "the runs folder (--trainer.default_root_dir)",
        )
        _check_trainer(config.trainer)
        recipe = Path(str(config.config[-1])).stem if config.get("config") else "run"
        # Lightning's DDP launcher re-runs this command in each child process, which must use
        # the folder rank 0 named (the time in a default name has moved on by then).
        name = config.name or os.environ.get(RUN_NAME_VARIABLE)
        name = name or f"{recipe}-{time.strftime('%Y%m%d-%H%M%S')}"
        os.environ[RUN_NAME_VARIABLE] = name
        self.run_name = name
        self.run_dir = Path(config.trainer.default_root_dir or "runs") / name
        # Only rank 0 checks, creates or replaces the folder; the others find it made.
        self.owns_run_dir = is_launched_rank_zero()
        resuming = config.get("ckpt_path") is not None
        if config.get("ckpt_path") == "last":
            # The run folder's own last checkpoint, wherever the folder now is (a moved or
            # copied run resumes from its own file).
            last = self.run_dir / "checkpoints" / LAST_CHECKPOINT
            if not last.is_file():
                raise ConfigError(
                    f"--ckpt_path last: {last} does not exist; give the --name of a run that "
                    "wrote a checkpoint, or the path of a checkpoint."
                )
            config.ckpt_path = str(last)
        occupied = self.owns_run_dir and self.run_dir.exists() and any(self.run_dir.iterdir())
        if occupied and not resuming and not config.overwrite:
            raise ConfigError(
                f"the run folder {self.run_dir} already exists; choose another --name, "
                "resume it with --ckpt_path last, or pass --overwrite true."
            )
        if occupied and not resuming:
            _check_is_run_folder(self.run_dir)
        if config.checkpoint_every < 1:
            raise ConfigError(
                f"--checkpoint_every must be at least 1 (got {config.checkpoint_every})."
            )
        self.replace_run_dir = occupied and not resuming
        self.resuming = resuming
        dump = yaml.safe_load(self.parser.dump(self.config, skip_none=False))[self.subcommand]
        # Tricks and detectors are model arguments, so the model's config carries the ones
        # that change the networks' structure (spectral norm, an EMA copy of G), which a
        # checkpoint's weights only fit once they are applied again. The rest is what a
        # resume compares its recipe with.
        self.run_config = {key: dump.get(key) for key in RESUME_SECTIONS}
        self.resolved_recipe = dump
        self.resume_changes: dict[str, list] = {}
        self.resumed_from: dict[str, Any] | None = None
        if resuming:
            self.resumed_from = load_resumable_checkpoint(config.ckpt_path)
            stored = self.resumed_from.get(RUN_CONFIG_KEY) or {}
            self.resume_changes = setting_changes(stored, dump)
            check_changes(self.resume_changes, accepted=config.resume_changes)
            step = int(self.resumed_from.get("global_step", 0))
            max_steps = config.trainer.max_steps
            if max_steps is not None and 0 <= max_steps <= step:
                raise ConfigError(
                    f"--trainer.max_steps {max_steps} is already reached: the checkpoint is at "
                    f"iteration {step}; give a larger --trainer.max_steps to train on."
                )

    def before_fit(self) -> None:
        if self.resumed_from is not None:
            check_weights_fit(self.resumed_from["state_dict"], self.model)
            self.resumed_from = None  # the trainer loads the file itself

    def instantiate_trainer(self, **kwargs: Any) -> pl.Trainer:
        trainer_config = self.config_init[self.subcommand].get("trainer") or {}
        config = self.config[self.subcommand]
        if self.owns_run_dir:
            self.folders.open(self.run_dir, replace=self.replace_run_dir, resume=self.resuming)
            print(f"gan-tricks: run folder {self.run_dir}", file=sys.stderr)
        kwargs["default_root_dir"] = str(self.run_dir)
        metrics = MetricsLogger(self.run_dir)
        if trainer_config.get("logger") in (None, True):
            kwargs["logger"] = _loggers(metrics, self.run_name, config.wandb, self.resolved_recipe)
        callbacks = list(trainer_config.get("callbacks") or [])
        history = RunHistory(self.run_dir, metrics.file, self.resume_changes)
        history.checkpoint = config.get("ckpt_path")
        callbacks.append(history)
        if self.resume_changes:
            callbacks.append(AppliedChanges(self.resume_changes))
        callbacks.append(self.folders.stop_requests)
        callbacks.append(EmbedRunConfig(self.run_config))
        callbacks.append(RunArtifacts(self.run_dir))
        callbacks.append(RandomStates())
        callbacks.append(self.folders.keeper())
        if trainer_config.get("enable_progress_bar") is not False and not any(
            isinstance(callback, ProgressBar) for callback in callbacks
        ):
            callbacks.append(StepProgressBar())
        if trainer_config.get("enable_checkpointing") is not False:
            callbacks.append(LastCheckpoint(self.run_dir / "checkpoints", config.checkpoint_every))
        kwargs["callbacks"] = callbacks
        plugins = trainer_config.get("plugins") or []
        plugins = list(plugins) if isinstance(plugins, list | tuple) else [plugins]
        if not any(isinstance(plugin, CheckpointIO) for plugin in plugins):
            plugins.append(AtomicCheckpointIO())
        if trainer_config.get("sync_batchnorm") and not _runs_on_cuda(trainer_config):
            # torch's SyncBatchNorm refuses CPU tensors; ours syncs over any backend.
            kwargs["sync_batchnorm"] = False
            plugins.append(CrossRankSyncBatchNorm())
        kwargs["plugins"] = plugins
        return super().instantiate_trainer(**kwargs)


WANDB_MODES = ("auto", "online", "offline", "off")
SIGTERM_EXIT_STATUS = 128 + 15
SIGINT_EXIT_STATUS = 128 + 2
RUN_NAME_VARIABLE = "GAN_TRICKS_RUN_NAME"


def _check_trainer(trainer: Any) -> None:
    """One sentence for trainer settings Lightning would answer with a traceback."""
    max_steps = trainer.get("max_steps")
    if max_steps is not None and (max_steps < -1 or max_steps == 0):
        raise ConfigError(
            "--trainer.max_steps must be a number of iterations, at least 1 (or -1 for no "
            f"limit) (got {max_steps})."
        )
    accelerator = trainer.get("accelerator")
    if not isinstance(accelerator, str):
        return
    missing = {
        "gpu": ("CUDA GPU", torch.cuda.is_available),
        "cuda": ("CUDA GPU", torch.cuda.is_available),
        "mps": ("MPS device (Apple silicon)", torch.backends.mps.is_available),
        "tpu": ("TPU (torch_xla)", lambda: importlib.util.find_spec("torch_xla") is not None),
    }.get(accelerator.lower())
    if missing is not None and not missing[1]():
        raise ConfigError(
            f"--trainer.accelerator {accelerator}: torch finds no {missing[0]} on this machine; "
            "use --trainer.accelerator cpu (or auto, which takes what there is)."
        )


def _runs_on_cuda(trainer_config: Any) -> bool:
    accelerator = str(trainer_config.get("accelerator") or "auto")
    return accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())


def _wandb_url() -> str:
    return os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")


def _wandb_reachable(timeout: float = 5.0) -> bool:
    """Whether W&B's server answers a TCP connection within ``timeout`` seconds: without a
    network, wandb's own start-up waits for minutes and then ends the run."""
    url = urllib.parse.urlsplit(_wandb_url())
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False


def _has_wandb_credentials() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    return netrc.is_file() and "api.wandb.ai" in netrc.read_text(errors="ignore")


def _check_is_run_folder(run_dir: Path) -> None:
    """Refuse to replace a folder that a run did not make (it holds ``config.yaml`` or
    ``checkpoints/``): ``--overwrite`` must never delete a user's other files."""
    if not ((run_dir / "config.yaml").is_file() or (run_dir / "checkpoints").is_dir()):
        raise ConfigError(
            f"--overwrite would delete {run_dir}, which does not look like a gan-tricks run "
            "folder (no config.yaml or checkpoints/); choose another --name."
        )


class RunFolders:
    """The run folder one ``gan-tricks fit`` creates, undone if the fit fails before training.

    A recipe error that only shows once the classes exist (a conflict between tricks, a
    generator that cannot make the data's shape, a missing data set) must leave no new run
    folder behind, and must not have destroyed the earlier run that ``--overwrite`` was about
    to replace. So an earlier run is moved aside, not deleted, and is deleted only once
    training starts (:meth:`keeper`'s ``on_train_start``); :meth:`undo` puts it back.
    Lightning would otherwise write ``last-v1.ckpt`` beside the old ``last.ckpt``, and
    ``alarms.jsonl`` and the W&B folder would mix two runs, so replacing is all or nothing.
    """

    def __init__(self) -> None:
        self.run_dir: Path | None = None
        self.created: Path | None = None
        self.aside: Path | None = None
        self.backup: Path | None = None
        self.started = False
        self.stop_requests = StopRequests()

    def open(self, run_dir: Path, replace: bool, resume: bool = False) -> None:
        self.run_dir = run_dir
        if replace:
            self.aside = run_dir.with_name(f".{run_dir.name}.replaced-{os.getpid()}")
            run_dir.rename(self.aside)
        if resume and run_dir.is_dir():
            # A resume that fails before training (weights that do not fit, a W&B or data
            # error) must leave the run as it was: its files are copied aside (checkpoints
            # excepted: nothing writes them before training) and put back by undo().
            self.backup = run_dir.with_name(f".{run_dir.name}.resumed-{os.getpid()}")
            shutil.rmtree(self.backup, ignore_errors=True)
            shutil.copytree(
                run_dir, self.backup, symlinks=True, ignore=shutil.ignore_patterns("checkpoints")
            )
        # The outermost folder this fit creates (runs/ itself, on a first run).
        missing = [folder for folder in (run_dir, *run_dir.parents) if not folder.exists()]
        self.created = missing[-1] if missing else None
        run_dir.mkdir(parents=True, exist_ok=True)

    def keeper(self) -> pl.Callback:
        """The callback that tells this record when training starts."""
        return _TrainingStarted(self)

    def training_started(self) -> None:
        self.started = True
        for kept in (self.aside, self.backup):
            if kept is not None:
                shutil.rmtree(kept, ignore_errors=True)
        self.aside = self.backup = None

    def undo(self) -> None:
        """Remove the folder this fit created and restore the run it replaced, unless
        training had started (then the folder holds a real, if failed, run)."""
        if self.started:
            return
        _finish_wandb_run()  # its service writes into the folder until the run is finished
        if self.created is not None:
            shutil.rmtree(self.created, ignore_errors=True)
        if self.aside is not None and self.run_dir is not None:
            shutil.rmtree(self.run_dir, ignore_errors=True)
            self.aside.rename(self.run_dir)
            self.aside = None
        if self.backup is not None and self.run_dir is not None:
            for entry in self.run_dir.iterdir():
                if entry.name != "checkpoints":
                    _remove(entry)
            for entry in self.backup.iterdir():
                entry.rename(self.run_dir / entry.name)
            shutil.rmtree(self.backup, ignore_errors=True)
            self.backup = None


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


class StopRequests(pl.Callback):
    """Ctrl+C (SIGINT) stops a fit the way SIGTERM does: the iteration in flight ends, its
    checkpoint is written (``LastCheckpoint`` at the end of training), and ``fit`` exits with
    130 (128 + 2). A second Ctrl+C interrupts at once, as Python's default does."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._request)

    def uninstall(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def _request(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print(
            "\ngan-tricks: stopping after this iteration (Ctrl+C again to stop at once).",
            file=sys.stderr,
        )

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.requested:
            trainer.should_stop = True


class RunConfigFile(SaveConfigCallback):
    """The run's ``config.yaml``, written when training starts rather than at setup (as
    Lightning's callback does), so that a resume or an ``--overwrite`` that fails before
    training leaves the earlier run's file as it was; written atomically."""

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        return None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        text = self.parser.dump(self.config, skip_none=False)
        write_atomically(
            Path(trainer.default_root_dir) / self.config_filename, lambda p: p.write_text(text)
        )


class _TrainingStarted(pl.Callback):
    def __init__(self, folders: RunFolders) -> None:
        self.folders = folders

    def on_train_start(self, trainer, pl_module) -> None:
        self.folders.training_started()


def _finish_wandb_run() -> None:
    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.run.finish(exit_code=1, quiet=True)


def wandb_run_config(dump: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The resolved recipe as W&B's run config (optimizers and their rates, the networks and
    their widths, the loss, every trick and detector with its settings), and the tags runs
    group by: the recipe's tricks by class name."""
    config = {key: dump.get(key) for key in ("seed_everything", "model", "data")}
    config["trainer"] = {
        key: (dump.get("trainer") or {}).get(key)
        for key in ("max_steps", "precision", "accumulate_grad_batches", "devices", "strategy")
    }
    model = dump.get("model") or {}
    tricks = [entry["class_path"].rsplit(".", 1)[-1] for entry in model.get("tricks") or []]
    detectors = [entry["class_path"].rsplit(".", 1)[-1] for entry in model.get("detectors") or []]
    config["tricks"], config["detectors"] = tricks, detectors
    return config, sorted(set(tricks)) or ["no-tricks"]


def _loggers(
    metrics: MetricsLogger,
    run_name: str,
    wandb_mode: str,
    run_config: dict[str, Any] | None = None,
) -> list:
    run_dir = metrics.run_dir
    loggers: list = [metrics]
    if wandb_mode == "off" or os.environ.get("WANDB_MODE") == "disabled":
        return loggers
    offline = wandb_mode == "offline" or (
        wandb_mode == "auto"
        and os.environ.get("WANDB_MODE") != "online"
        and not _has_wandb_credentials()
    )
    if not offline and not _wandb_reachable():
        print(
            f"gan-tricks: W&B's server ({_wandb_url()}) cannot be reached; this run logs "
            "offline, and `wandb sync` uploads it later.",
            file=sys.stderr,
        )
        offline = True
    if offline:
        # No prompt for a login: offline runs write real run files to sync later.
        os.environ["WANDB_MODE"] = "offline"
    os.environ.setdefault("WANDB_SILENT", "true")
    config, tags = wandb_run_config(run_config or {})
    loggers.append(
        WandbLogger(
            name=run_name,
            save_dir=str(run_dir),
            project=os.environ.get("WANDB_PROJECT", "gan-tricks"),
            offline=offline,
            config=config,
            tags=tags,
        )
    )
    return loggers


def fit_command(args: list[str]) -> int:
    # Lightning's start-up lines (accelerators found, product tips) say nothing a gan-tricks
    # user acts on; its warnings still show. The closing summary says how the run ended.
    logging.getLogger("pytorch_lightning.utilities.rank_zero").setLevel(logging.WARNING)
    logging.getLogger("lightning_fabric.utilities.seed").setLevel(logging.WARNING)
    args = packaged_configs(args)
    for recipe in _option_values(args, "--config"):
        _check_recipe(recipe)
    for option, value in itertools.pairwise(args):
        if option.startswith("--") and "*" in value and "&" in value:
            safe_yaml(value, f"the value of {option}")  # jsonargparse reads values as YAML
    for checkpoint in _option_values(args, "--ckpt_path"):
        # LightningCLI itself reads a checkpoint file given here, before the trainer exists.
        if checkpoint not in ("last", "best", "hpc", "registry", "null"):
            load_resumable_checkpoint(checkpoint)
    folders = RunFolders()
    inherited_name = os.environ.get(RUN_NAME_VARIABLE)
    folders.stop_requests.install()
    try:
        cli = _fit(args, folders)
    except SIGTERMException:
        # Stopped from outside after a whole iteration, its checkpoint written (LastCheckpoint):
        # the conventional status of a process ended by SIGTERM, so a script sees it unfinished.
        print(
            "gan-tricks: stopped by SIGTERM; the last iteration's checkpoint is written, "
            "resume with --ckpt_path last.",
            file=sys.stderr,
        )
        return SIGTERM_EXIT_STATUS
    except BaseException:
        folders.undo()
        raise
    finally:
        folders.stop_requests.uninstall()
        # The name is for this fit's DDP children only, not for a next fit in this process.
        if inherited_name is None:
            os.environ.pop(RUN_NAME_VARIABLE, None)
    # Close the W&B run, so that its files are complete when `fit` returns (a caller in the
    # same process reads them; Lightning's WandbLogger leaves the run open until exit).
    for logger in cli.trainer.loggers:
        if isinstance(logger, WandbLogger):
            logger.experiment.finish()
    if cli.trainer.is_global_zero:
        print(closing_summary(cli.trainer, cli.model), file=sys.stderr)
    if folders.stop_requests.requested:
        print(
            "gan-tricks: stopped by Ctrl+C (SIGINT); the last iteration's checkpoint is "
            "written, resume with --ckpt_path last.",
            file=sys.stderr,
        )
        return SIGINT_EXIT_STATUS
    return 0


def closing_summary(trainer: pl.Trainer, module: GANModule) -> str:
    """What a finished fit says last: where the run is, how it ended, what to run next."""
    run_dir = Path(trainer.default_root_dir)
    lines = [f"gan-tricks: {trainer.global_step} iterations in {run_dir}"]
    if module.signals is not None:
        last = module.signals.floats()
        lines.append(f"  last D loss {last['d_loss']:.4g}, G loss {last['g_loss']:.4g}")
    alarms = [alarm for detector in module.detectors for alarm in detector.alarms]
    if module.detectors:
        lines.append(f"  {len(alarms)} alarm(s) from {len(module.detectors)} detector(s)")
    lines.append(f"  next: gan-tricks report {run_dir}")
    lines.append(f"        gan-tricks evaluate {run_dir / 'checkpoints' / LAST_CHECKPOINT}")
    offline = sorted(run_dir.glob("wandb/offline-run-*"))
    if offline:
        lines.append(f"        wandb sync {offline[-1]}")
    return "\n".join(lines)


def _fit(args: list[str], folders: RunFolders) -> GANTricksCLI:
    return GANTricksCLI(
        GANModule,
        pl.LightningDataModule,
        subclass_mode_data=True,
        args=["fit", *args],
        save_config_callback=RunConfigFile,
        save_config_kwargs={"overwrite": True},
        parser_kwargs={"exit_on_error": False, "fit": {"exit_on_error": False}},
        auto_configure_optimizers=False,
        folders=folders,
    )


def packaged_configs(args: list[str]) -> list[str]:
    """``args`` with every ``--config`` value that is not a file but names a packaged recipe
    (``ring8``, ``tricks/r1``, ``recipes/ring8.yaml`` outside a clone) replaced by its path."""
    resolved = list(args)
    for index, arg in enumerate(resolved):
        if arg == "--config" and index + 1 < len(resolved):
            resolved[index + 1] = _packaged_or_given(resolved[index + 1])
        elif arg.startswith("--config="):
            resolved[index] = "--config=" + _packaged_or_given(arg.split("=", 1)[1])
    return resolved


def _packaged_or_given(value: str) -> str:
    if Path(value).is_file():
        return value
    packaged = find_recipe(value)
    return str(packaged) if packaged is not None else value


def _option_values(args: list[str], option: str) -> list[str]:
    """The values given to ``option`` on the command line (``--option V`` or ``--option=V``)."""
    values = []
    for index, arg in enumerate(args):
        if arg == option and index + 1 < len(args):
            values.append(args[index + 1])
        elif arg.startswith(option + "="):
            values.append(arg.split("=", 1)[1])
    return values


def _check_recipe(path: str) -> None:
    """One sentence for a recipe that is missing or not a YAML mapping, before jsonargparse
    reads it (its own message for a text file is a page about parsing the file as a value)."""
    recipe = Path(path)
    if not recipe.is_file():
        raise ConfigError(
            f"the recipe {path} does not exist; give the path of a YAML recipe or the name of a "
            "packaged one (gan-tricks recipes lists them)."
        )
    try:
        content = safe_yaml(recipe.read_text(), f"the recipe {path}")
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        where = getattr(error, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise ConfigError(
            f"the recipe {path} is not valid YAML{line}; fix it or start from recipes/ring8.yaml."
        ) from None
    if not isinstance(content, dict):
        raise ConfigError(
            f"the recipe {path} is not a YAML mapping of settings (it reads as "
            f"{type(content).__name__}); start from recipes/ring8.yaml."
        )


def sample_command(args: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="gan-tricks sample", description="Draw samples from a checkpoint of gan-tricks fit."
    )
    parser.add_argument(
        "checkpoint",
        help="a checkpoint of gan-tricks fit (last.ckpt) or a generator of gan-tricks export "
        "(.safetensors)",
    )
    parser.add_argument("-n", "--num-samples", type=int, default=64, help="how many samples")
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        help="OUT.npy: float32 array (N, 2) or (N, C, H, W) in [-1, 1]; OUT.png: a picture",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the latent codes")
    parser.add_argument(
        "--truncation",
        type=float,
        default=None,
        help="redraw Gaussian z outside [-T, T] (BigGAN's truncation trick): quality over variety",
    )
    parser.add_argument(*ALLOW_CLASS_ARGS, **ALLOW_CLASS_OPTIONS)
    options = parser.parse_args(args)
    if options.num_samples < 1:
        raise ConfigError(f"-n must be at least 1 (got {options.num_samples}).")
    truncation = options.truncation
    if truncation is not None and not (math.isfinite(truncation) and truncation > 0):
        raise ConfigError(
            f"--truncation must be a finite number above 0, such as 1.0 (got {truncation})."
        )
    output = Path(options.output)
    check_output_file(output, (".npy", ".png"))
    if options.checkpoint.endswith(".safetensors"):
        if options.truncation is not None:
            raise ConfigError("--truncation needs a checkpoint (.ckpt), not an exported generator.")
        generator, latent = load_generator(options.checkpoint, allow=options.allow_class)
        samples = sample_exported(generator, latent, options.num_samples, seed=options.seed)
        datamodule = None
    else:
        module, datamodule = load_run(options.checkpoint, allow=options.allow_class)
        samples = module.sample(
            options.num_samples, seed=options.seed, truncation=options.truncation
        )
    if not torch.isfinite(samples).all():
        raise ConfigError(
            f"the generator of {options.checkpoint} makes non-finite samples (NaN or Inf): its "
            "weights are broken; sample an earlier checkpoint."
        )
    write_atomically(output, lambda partial: save_samples(samples, partial, datamodule))
    print(f"wrote {len(samples)} samples to {output}")
    return 0


def evaluate_command(args: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="gan-tricks evaluate",
        description="Print one JSON object of metrics for a checkpoint of gan-tricks fit.",
    )
    parser.add_argument("checkpoint", help="a checkpoint written by gan-tricks fit (last.ckpt)")
    parser.add_argument(
        "-n",
        "--num-samples",
        type=int,
        default=None,
        help="default: the protocol's (2,500 on 2D, 26,000 on stacked digits, 2,048 otherwise)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the latent codes")
    parser.add_argument(
        "--inception-weights",
        default=None,
        metavar="PATH",
        help="torch-fidelity's Inception-v3 weights (pt_inception-2015-12-05-6726825d.pth): "
        "FID, KID, precision/recall and density/coverage in Inception's feature space, for "
        "image data other than the digits (which use a digit feature network)",
    )
    parser.add_argument(*ALLOW_CLASS_ARGS, **ALLOW_CLASS_OPTIONS)
    options = parser.parse_args(args)
    if options.num_samples is not None and options.num_samples < 1:
        raise ConfigError(f"-n must be at least 1 (got {options.num_samples}).")
    module, datamodule = load_run(options.checkpoint, allow=options.allow_class)
    metrics = evaluate_samples(
        module, datamodule, options.num_samples, options.seed, options.inception_weights
    )
    print(json.dumps(metrics))
    return 0


# Warnings that say nothing to a gan-tricks user: our run folders and samplers are by design.
QUIET_WARNINGS = (
    ".*LightningCLI's args parameter.*",
    ".*Experiment logs directory .* exists and is not empty.*",
    ".*`IterableDataset` has `__len__` defined.*",
    ".*isinstance\\(treespec, LeafSpec\\).*",
    ".*does not have many workers.*",
    # Our checkpoints are meant to hold the state after the iteration they are named by.
    ".*Using ModelCheckpoint with manual optimization and every_n_train_steps.*",
)


def report_command(args: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="gan-tricks report",
        description="Write one self-contained HTML page (and a PNG) of a run: losses, every "
        "detector signal with its alarms, and samples over time.",
    )
    parser.add_argument("run_dir", help="a run folder written by gan-tricks fit (runs/NAME)")
    parser.add_argument("-o", "--output", default=None, help="default: RUN_DIR/report.html")
    options = parser.parse_args(args)
    from gan_tricks.report import write_report  # matplotlib: only this command needs it

    path = write_report(options.run_dir, options.output)
    print(f"wrote {path} and {Path(options.run_dir) / 'report.png'}")
    return 0


def export_command(args: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="gan-tricks export",
        description="Write the generator of a checkpoint (its moving average when the run kept "
        "one) as a .safetensors file with the config that rebuilds it: all a user who only "
        "samples needs, loadable without running any code from the file.",
    )
    parser.add_argument("checkpoint", help="a checkpoint written by gan-tricks fit (last.ckpt)")
    parser.add_argument("-o", "--output", required=True, help="OUT.safetensors")
    parser.add_argument(*ALLOW_CLASS_ARGS, **ALLOW_CLASS_OPTIONS)
    options = parser.parse_args(args)
    check_output_file(Path(options.output), (".safetensors",))
    module, _ = load_run(options.checkpoint, allow=options.allow_class)
    config = load_checkpoint_file(options.checkpoint)[RUN_CONFIG_KEY]
    path = export_generator(module, options.output, config["model"]["generator"])
    print(f"wrote {path}: load it with gan_tricks.export.load_generator({str(path)!r})")
    return 0


# Classes a stored config may name beyond the package's own (gan_tricks.trust).
ALLOW_CLASS_ARGS = ("--allow-class",)
ALLOW_CLASS_OPTIONS: dict[str, Any] = {
    "action": "append",
    "default": [],
    "metavar": "NAME",
    "help": "a class (or a package: all its classes) the checkpoint's config may name beyond "
    "gan-tricks' own, such as your own data module; repeat for more",
}

COMMANDS = {
    "fit": fit_command,
    "sample": sample_command,
    "evaluate": evaluate_command,
    "report": report_command,
    "export": export_command,
    "ablate": ablate_command,
}


def run(name: str, args: list[str]) -> int:
    """Run the command ``name`` (a key of :data:`COMMANDS`) on ``args``; a mistake the user
    can fix is one sentence and exit status 2."""
    for noise in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=noise)
    try:
        return COMMANDS[name](args)
    except (ConfigError, ArgumentError, ValueError) as error:
        sentence = _user_error_sentence(error)
        if sentence is None:
            raise
        print(f"gan-tricks: error: {sentence}", file=sys.stderr)
        return 2


def _choice_sentence(lines: list[str]) -> str | None:
    """'model.tricks: GradientPenalty kind must be one of wgan-gp, ... (got 'r3')' from
    jsonargparse's report of a value outside a ``Literal``, however deep it sits."""
    for index, line in enumerate(lines):
        found = re.match(r"Expected a typing\.Literal\[(.*)\]\. Got value: (.*)$", line)
        if found is None:
            continue
        choices = ", ".join(part.strip().strip("'\"") for part in found.group(1).split(","))
        keys = [
            m.group(1)
            for text in lines[: index + 1]
            if (m := re.match(r'Parser key "(.+)":$', text))
        ]
        owner = [
            m.group(1).rsplit(".", 1)[-1]
            for text in lines[:index]
            if (m := re.search(r"given class_path '([\w.]+)'", text))
        ]
        where = ".".join(keys[:1]) + (f": {owner[-1]}" if owner else "")
        name = keys[-1] if len(keys) > 1 else ""
        subject = f"{where} {name}".strip() if owner else ".".join(keys)
        return f"{subject} must be one of {choices} (got {found.group(2)!r})."
    return None


def _user_error_sentence(error: BaseException) -> str | None:
    """One sentence for an error the user can fix, or None for a bug (which keeps its traceback).

    Our own ``ConfigError`` may arrive wrapped by jsonargparse (a class in a union type is
    instantiated inside it); jsonargparse's own errors name the key on their first line and
    list the reasons below it.
    """
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ConfigError):
            return str(seen)
        seen = seen.__cause__ or seen.__context__
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    choice = _choice_sentence(lines)
    if choice is not None:
        return choice
    reasons = [
        line[2:] for line in lines if line.startswith("- ") and not line.startswith("- Expected a")
    ]
    for reason in reasons:
        if reason.startswith(("data.", "model.")):
            return reason
    if not (isinstance(error, ArgumentError) or "Union subtypes" in str(error)):
        return None
    # 'Parser key "model.generator":' ... 'Parser key "width":' ... 'Expected a <class 'int'>'
    keys = [m.group(1) for line in lines if (m := re.match(r'Parser key "(.+)":$', line))]
    details = [
        line
        for line in lines
        if not re.match(r'Parser key ".+":$', line) and not line.startswith("Problem with")
    ]
    reason = details[-1] if details else type(error).__name__
    reason = re.sub(r"<class '(\w+)'>", r"\1", reason)
    return f"{'.'.join(keys)}: {reason}" if keys else reason
    return None


__all__ = ["COMMANDS", "run"]
