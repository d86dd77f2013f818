"""What tricks and detectors are given: the networks and one step's tensors, typed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from gan_tricks.functional.latent import Latent
    from gan_tricks.functional.losses import GANLoss

Phase = Literal["d", "g"]
PHASES: tuple[Phase, ...] = ("d", "g")


class Networks(nn.Module):
    """G, D and the copies tricks add (G's moving average, a mixture's classifier), as one
    module: one ``state_dict`` holds them all, with the same keys a Lightning checkpoint uses
    (``generator.*``, ``discriminator.*``, ``generator_ema.*``)."""

    def __init__(self, generator: nn.Module, discriminator: nn.Module) -> None:
        super().__init__()
        self.generator = generator
        self.discriminator = discriminator
        self.generator_ema: nn.Module | None = None


@runtime_checkable
class NetworkHolder(Protocol):
    """Anything that holds G and D as submodules: :class:`Networks`, or the Lightning
    adapter's module (so its checkpoints keep their keys)."""

    generator: nn.Module
    discriminator: nn.Module
    generator_ema: nn.Module | None

    def add_module(self, name: str, module: nn.Module | None) -> None: ...

    def state_dict(self, *args, **kwargs) -> dict: ...

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False): ...


@runtime_checkable
class DataSpec(Protocol):
    """What the step may ask of the data: the shape of one sample and its kind."""

    sample_shape: tuple[int, ...]
    kind: str  # "points" or "images"


@dataclass(eq=False)
class StepContext:
    """The one object tricks and detectors see: the networks, the settings of the step, and
    the tensors of the phase that is running.

    The engine keeps one context and fills it as the iteration goes: in a D step ``phase`` is
    ``"d"``, ``real`` and ``fake`` are the batches as D sees them once transforms ran
    (augmented, noised, packed) and ``real_logits`` / ``fake_logits`` D's outputs on them; in
    the G step ``phase`` is ``"g"`` and ``z`` / ``g_output`` are the codes and G's raw output
    before any trick transformed it. ``step`` is the index of the current iteration (the G
    steps done before it), the same in every hook of one iteration.
    """

    networks: NetworkHolder
    latent: Latent
    loss: GANLoss
    n_critic: int = 1
    step: int = 0
    max_steps: int | None = None
    data: DataSpec | None = None
    # Whether this iteration's values go to the logs (every ``log_every_n_steps``): detectors
    # compute what is only logged (the largest layer's gradient norm) on those steps alone.
    logging_step: bool = True
    # G and D run through torch.compile, whose graphs cannot be differentiated twice.
    compiled: bool = False
    phase: Phase | None = None
    real_batch: Tensor | None = None  # the iteration's real batch, untransformed
    fake_batch: Tensor | None = None  # a D step's fakes as G made them, untransformed
    real: Tensor | None = None
    fake: Tensor | None = None
    real_logits: Tensor | None = None
    fake_logits: Tensor | None = None
    z: Tensor | None = None
    g_output: Tensor | None = None
    g_optimizer: torch.optim.Optimizer | None = None
    d_optimizer: torch.optim.Optimizer | None = None
    # The learning-rate schedulers the engine steps once per iteration (TTUR moves their base
    # rates with the optimizers').
    schedulers: list = field(default_factory=list)
    # D's logits on samples read as training reads them, without random transforms
    # (set by the engine; see ``GANEngine.judge``).
    judge: Callable[[Tensor], Tensor] | None = None
    logged: dict[str, float | Tensor] = field(default_factory=dict)

    @property
    def generator(self) -> nn.Module:
        return self.networks.generator

    @property
    def discriminator(self) -> nn.Module:
        return self.networks.discriminator

    @property
    def generator_ema(self) -> nn.Module | None:
        return self.networks.generator_ema

    @property
    def sample_shape(self) -> tuple[int, ...] | None:
        return None if self.data is None else tuple(self.data.sample_shape)

    @property
    def data_kind(self) -> str | None:
        return None if self.data is None else self.data.kind

    @property
    def device(self) -> torch.device:
        parameter = next(self.generator.parameters(), None)
        return parameter.device if parameter is not None else torch.device("cpu")

    def log(self, name: str, value: float | Tensor) -> None:
        """Record a value of this iteration (a trick's probability or noise level); it comes
        back in the step's :class:`~gan_tricks.engine.StepSignals` and in the run's logs."""
        self.logged[name] = value
