"""The Pareto plot of one evaluation sweep (matplotlib, no display needed)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: the figure goes to a file and to TensorBoard

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from torch import Tensor  # noqa: E402


def pareto_figure(
    weights: Tensor,
    greedy: Tensor,
    sampled: Tensor | None = None,
    exact_front: Tensor | None = None,
    names: tuple[str, str] = ("objective 1", "objective 2"),
    title: str = "",
) -> Figure:
    """Per-``w`` points coloured by ``w_1`` (first two objectives), with the exact front when known.

    Example:
        >>> import torch
        >>> fig = pareto_figure(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[0.9, 0.1], [0.2, 0.8]]))
        >>> len(fig.axes) >= 1
        True
    """
    fig, ax = plt.subplots(figsize=(5.5, 4.5), dpi=100)
    if exact_front is not None:
        front = exact_front[exact_front[:, 0].argsort()]
        ax.plot(front[:, 0], front[:, 1], "-", color="0.7", lw=1.5, label="exact front", zorder=1)
    colour = weights[:, 0].double().numpy()
    if sampled is not None:
        # Hollow markers: the colour goes on the edges (``c`` would override ``facecolors="none"``).
        ax.scatter(sampled[:, 0], sampled[:, 1], edgecolors=plt.get_cmap("viridis")(colour), marker="o",
                   facecolors="none", s=28, alpha=0.6, label="sampled mean", zorder=2)  # fmt: skip
    sc = ax.scatter(greedy[:, 0], greedy[:, 1], c=colour, cmap="viridis", vmin=0, vmax=1, marker="x", s=40,
                    label="greedy", zorder=3)  # fmt: skip
    fig.colorbar(sc, ax=ax, label=f"w ({names[0]})")
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    ax.set_title(title)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    return fig

__all__ = [
    "pareto_figure",
]
