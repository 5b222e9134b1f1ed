"""Hypervolume and Pareto dominance for maximized objectives.

The hypervolume of a set of points ``P`` with respect to a reference point ``r`` is the Lebesgue measure of
the region that some point of ``P`` dominates and that dominates ``r``: ``vol(U_{p in P} [r, p])`` (Zitzler
and Thiele, 1998). Larger is better. The exact value comes from ``moocore`` (Lopez-Ibanez et al.), which
implements ``O(n log n)`` algorithms for ``K = 2, 3``, HV4D+ for ``K = 4`` and a recursive algorithm above.
"""

from __future__ import annotations

from typing import Any

import moocore
import torch
from torch import Tensor

from pareto_lightning.metrics.functional._checks import as_points, as_vector

# Rows compared at once in `non_dominated`: bounds the [chunk, N, K] comparison tensor to a few tens of MB.
_ELEMENTS_PER_CHUNK = 1 << 24


def _hypervolume_update(points: Any, ref_point: float | Any, key: str = "points") -> Tensor:
    """Validate ``points`` ``[N, K]`` and keep only the rows that strictly dominate ``ref_point``.

    A point equal to or below the reference in some objective spans a box of zero width there, so dropping it
    changes nothing and keeps the stored state small.
    """
    p = as_points(points, key=key)  # [N, K]
    ref = as_vector(ref_point, p.shape[1], key="ref_point").to(dtype=p.dtype, device=p.device)  # [] or [K]
    return p[(p > ref).all(dim=-1)]  # [M, K], M <= N


def _hypervolume_compute(points: Tensor, ref_point: float | Any) -> Tensor:
    """Exact hypervolume of ``points`` ``[N, K]`` (already validated) above ``ref_point``, as a tensor."""
    out = {"dtype": points.dtype, "device": points.device}
    if points.shape[0] == 0:
        return torch.zeros((), **out)
    ref = as_vector(ref_point, points.shape[1], key="ref_point").expand(points.shape[1])  # [K] float64
    # moocore minimizes: negating points and reference turns our maximization into its convention.
    value = moocore.hypervolume(-points.detach().cpu().double().numpy(), ref=(-ref).numpy())
    return torch.tensor(value, **out)


def hypervolume(points: Any, ref_point: float | Any) -> Tensor:
    """Exact hypervolume dominated by ``points`` above ``ref_point``, all objectives maximized.

    Points that do not strictly dominate ``ref_point`` (some coordinate ``<=`` the reference) add nothing; an
    empty set has hypervolume 0. Exact for any ``K`` (``moocore.hypervolume`` on the negated points).

    Args:
        points: ``[N, K]`` finite points (``N`` may be 0).
        ref_point: a float (used for every objective) or a length-``K`` sequence, finite.

    Returns:
        A scalar tensor with the floating dtype and device of ``points``.

    Raises:
        ValueError: if ``points`` is not ``[N, K]`` or not finite, or ``ref_point`` has the wrong length.

    Example:
        >>> hypervolume(torch.tensor([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0]]), ref_point=0.0)
        tensor(6.)
        >>> hypervolume(torch.tensor([[1.0, 0.0], [0.5, 0.5]]), ref_point=[0.0, 0.0])  # (1, 0) adds nothing
        tensor(0.2500)
    """
    return _hypervolume_compute(_hypervolume_update(points, ref_point), ref_point)


def non_dominated(points: Any) -> Tensor:
    """Boolean mask ``[N]`` of the points that no other point Pareto-dominates (maximization).

    ``q`` dominates ``p`` when ``q >= p`` in every objective and ``q > p`` in at least one. Identical copies
    do not dominate each other, so every copy of a non-dominated point is kept. Pure torch: an ``O(N^2 K)``
    pairwise comparison, done in row chunks to bound memory (fine for the few hundred points of a sweep).

    Args:
        points: ``[N, K]`` finite points.

    Returns:
        ``[N]`` bool tensor on the device of ``points``.

    Example:
        >>> non_dominated(torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.4, 0.4], [0.5, 0.5], [0.0, 1.0]]))
        tensor([ True,  True, False,  True,  True])
    """
    p = as_points(points)  # [N, K]
    n, k = p.shape
    keep = torch.ones(n, dtype=torch.bool, device=p.device)
    chunk = max(1, _ELEMENTS_PER_CHUNK // max(1, n * k))
    for start in range(0, n, chunk):
        rows = p[start : start + chunk, None, :]  # [C, 1, K]
        weakly_better = (p[None, :, :] >= rows).all(dim=-1)  # [C, N]: column point >= row point everywhere
        strictly_somewhere = (p[None, :, :] > rows).any(dim=-1)  # [C, N]
        keep[start : start + chunk] = ~(weakly_better & strictly_somewhere).any(dim=-1)
    return keep


__all__ = ["hypervolume", "non_dominated"]
