"""Pictures a practitioner would rather look at than read: scatters, grids, run curves."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor
from torchvision.utils import make_grid, save_image


def plot_points(
    samples: Tensor,
    path: Path | str,
    modes: Tensor | None = None,
    real: Tensor | None = None,
    title: str | None = None,
) -> Figure:
    """A scatter of 2D samples over the true modes (and faint real samples); the figure."""
    samples = samples.detach().cpu()
    fig, ax = figure_with_axes(figsize=(5, 5.5), dpi=120)
    if real is not None:
        real = real.detach().cpu()
        ax.scatter(real[:, 0], real[:, 1], s=2, c="0.75", alpha=0.5, label="real")
    ax.scatter(samples[:, 0], samples[:, 1], s=2, c="tab:blue", alpha=0.6, label="generated")
    if modes is not None:
        ax.scatter(modes[:, 0], modes[:, 1], s=40, marker="x", c="tab:red", label="true modes")
        # The data's own frame, the same in every picture of a run (snapshots compare), with
        # the samples that fall outside it counted in the title.
        low, high = modes.min(0).values, modes.max(0).values
        pad = 0.25 * float((high - low).max()) + 0.25
        ax.set(xlim=(float(low[0]) - pad, float(high[0]) + pad))
        ax.set(ylim=(float(low[1]) - pad, float(high[1]) + pad))
        inside = (samples >= low - pad).all(1) & (samples <= high + pad).all(1)
        outside = int((~inside).sum())
        if outside and title is None:
            title = f"{len(samples)} samples, {outside} outside the frame"
    ax.set_aspect("equal")
    # Below the axes: inside, it would hide a corner mode of grid25.
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.06), ncol=3, fontsize=8, markerscale=3)
    ax.set_title(title or f"{len(samples)} samples")
    fig.tight_layout()
    fig.savefig(path)
    return fig


# Small images (8-32 px digits) in a grid of 64 make a picture of about 137 px: scaled up by a
# whole factor, nearest-neighbour (each pixel a crisp block), to at least this width.
MIN_GRID_WIDTH = 512


def save_image_grid(samples: Tensor, path: Path | str, nrow: int | None = None) -> None:
    """An image grid of samples in [-1, 1], at least :data:`MIN_GRID_WIDTH` pixels wide."""
    samples = samples.detach().cpu().float()
    nrow = nrow or max(1, int(len(samples) ** 0.5))
    grid = make_grid(samples, nrow=nrow, normalize=True, value_range=(-1, 1), padding=1)
    factor = math.ceil(MIN_GRID_WIDTH / grid.shape[-1])
    if factor > 1:
        grid = torch.nn.functional.interpolate(grid[None], scale_factor=factor, mode="nearest")[0]
    save_image(grid, path)


def plot_training(history: Sequence[dict[str, float]], path: Path | str) -> None:
    """Losses, D's mean logits and gradient norms over a run, one panel each."""

    def series(key: str) -> tuple[Tensor, Tensor] | None:
        # Rows without the key are left out: gradient norms, say, are only taken on logging
        # steps, so a history sampled more often has them on some rows only.
        rows = [row for row in history if key in row]
        if not rows:
            return None
        return torch.tensor([row["step"] for row in rows]), torch.tensor([row[key] for row in rows])

    panels = [
        ("losses", ["d_loss", "g_loss"], False),
        ("D's mean logit", ["d_real", "d_fake"], False),
        ("gradient norm", ["d_grad_norm", "g_grad_norm"], True),
    ]
    fig, axes = figure_with_axes(1, len(panels), figsize=(13, 3.4), dpi=110)
    for ax, (title, keys, log_scale) in zip(axes, panels):
        for key in keys:
            drawn = series(key)
            if drawn is not None:
                ax.plot(*drawn, label=key, linewidth=1)
        if log_scale:
            ax.set_yscale("log")
        ax.set_title(title)
        ax.set_xlabel("iteration (G step)")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)


def figure_with_axes(*grid: int, figsize: tuple[float, float], dpi: int, **options):
    """``plt.subplots`` without pyplot: a figure of its own, drawn by the Agg canvas when saved.

    Files only, on servers and in CI alike, and importing gan-tricks never changes the
    matplotlib backend of the notebook or program that imports it (``matplotlib.use``
    would).
    """
    fig = Figure(figsize=figsize, dpi=dpi)
    return fig, fig.subplots(*grid, **options)


def save_samples(samples: Tensor, output: Path, datamodule=None) -> None:
    """``.npy``: the raw float32 array; ``.png``: a scatter over the modes or an image grid."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    if output.suffix == ".npy":
        np.save(output, samples.float().numpy())
    elif samples.dim() == 2:
        plot_points(
            samples,
            output,
            modes=getattr(datamodule, "modes", None),
            real=datamodule.real_samples(len(samples), seed=0) if datamodule else None,
        )
    else:
        save_image_grid(samples, output)
