"""Diagnostics of an achieved front: does ``w`` steer the rewards, and does the front have holes?

Both take the per-preference points of an evaluation sweep (one mean reward vector per evaluation weight).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from pareto_lightning.metrics.functional._checks import as_points
from pareto_lightning.metrics.functional.pareto import non_dominated


def _average_ranks(x: Tensor) -> Tensor:
    """1-based ranks of ``x`` ``[M]``, tied values sharing the mean of the ranks they occupy."""
    values, inverse, counts = torch.unique(x, sorted=True, return_inverse=True, return_counts=True)  # [U]
    last = counts.cumsum(0).to(torch.float64)  # [U] highest rank of each distinct value
    return (last - (counts - 1).to(torch.float64) / 2)[inverse]  # [M]


def _as_series(value: Any, key: str) -> Tensor:
    t = value if isinstance(value, Tensor) else torch.as_tensor(value, dtype=torch.float64)
    t = t.detach().cpu().to(torch.float64)
    if t.dim() != 1 or t.numel() == 0:
        raise ValueError(f"`{key}` must be a non-empty 1-D tensor [M]; got shape {tuple(t.shape)}.")
    if not torch.isfinite(t).all():
        raise ValueError(f"`{key}` must be finite; got {t.tolist()}.")
    return t


def spearman_correlation(x: Any, y: Any) -> float:
    """Spearman rank correlation of ``x`` and ``y``: the Pearson correlation of their average ranks.

    Used with ``x = w_k`` and ``y = r_k`` over an evaluation sweep: +1 when raising the weight of an
    objective never lowers its reward. Ties get the mean of the ranks they span (as
    ``scipy.stats.spearmanr``). When either side is constant the correlation is undefined; this returns
    ``0.0`` then (no monotone relation is shown), so a logged value is never NaN.

    Args:
        x: ``[M]`` finite values.
        y: ``[M]`` finite values, same length.

    Returns:
        A Python float in ``[-1, 1]``.

    Example:
        >>> spearman_correlation(torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor([1.0, 3.0, 2.0, 4.0]))
        0.8
        >>> spearman_correlation(torch.tensor([1.0, 2.0]), torch.tensor([5.0, 5.0]))  # constant side
        0.0
    """
    xs, ys = _as_series(x, "x"), _as_series(y, "y")
    if xs.shape != ys.shape:
        raise ValueError(f"`x` and `y` must have the same length; got {xs.numel()} and {ys.numel()}.")
    rx, ry = _average_ranks(xs), _average_ranks(ys)  # [M], [M]
    dx, dy = rx - rx.mean(), ry - ry.mean()
    denom = (dx.square().sum() * dy.square().sum()).sqrt()
    if denom == 0:  # a constant side: every rank equals the mean rank
        return 0.0
    return float((dx * dy).sum() / denom)


def max_gap(points: Any) -> float:
    """Largest Euclidean hole in the non-dominated part of an achieved front.

    The points are reduced to their non-dominated subset (maximization, see :func:`non_dominated`) with
    duplicates merged. For ``K = 2`` the subset is sorted by the first objective, which orders a 2-D front
    from one end to the other, and the result is the largest distance between consecutive points. For ``K >
    2`` a front has no such order, so the result is the largest nearest-neighbour distance (the most
    isolated point's distance to its closest neighbour). Fewer than two distinct non-dominated points (and
    ``K = 1``) give ``0.0``.

    Args:
        points: ``[M, K]`` finite points.

    Returns:
        A Python float ``>= 0``; smaller means a more evenly covered front.

    Example:
        >>> max_gap(torch.tensor([[0.0, 1.0], [0.3, 0.6], [1.0, 0.0], [0.2, 0.2]]))  # (0.2, 0.2) is dominated
        0.921954...
    """
    p = as_points(points).detach().cpu().to(torch.float64)  # [M, K]
    front = torch.unique(p[non_dominated(p)], dim=0)  # [F, K], distinct non-dominated points
    if front.shape[0] < 2:
        return 0.0
    if front.shape[1] == 2:
        ordered = front[front[:, 0].argsort()]  # [F, 2]
        return float((ordered[1:] - ordered[:-1]).norm(dim=-1).max())
    dist = torch.cdist(front, front)  # [F, F]
    dist.fill_diagonal_(float("inf"))
    return float(dist.min(dim=-1).values.max())


__all__ = ["max_gap", "spearman_correlation"]
