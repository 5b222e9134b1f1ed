"""The group layout of a rollout, and what the losses derive from it: ties, best/worst pairs, finite groups.

A rollout of ``B`` prompts with ``G`` completions each has ``N = B * G`` rows; rows ``g*G .. g*G+G-1`` belong to
prompt ``g`` and share its ``w``. Every function here reads that layout; no other module re-derives it.
"""

from __future__ import annotations

import torch
from torch import Tensor

TIE_TOL = 1e-8
"""A group whose values span at most this is tied: it carries no preference among its completions."""


def group_size_problem(group_size: object) -> str | None:
    """What is wrong with ``group_size`` as a number of completions per prompt, or None.

    Example:
        >>> group_size_problem(1)
        'must be an integer >= 2 (a group needs a spread); got 1'
        >>> group_size_problem(4) is None
        True
    """
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 2:
        return f"must be an integer >= 2 (a group needs a spread); got {group_size!r}"
    return None


def check_groups(values: Tensor, group_size: int) -> None:
    """Refuse ``values`` that are not ``[B*G]`` floats in whole groups of ``group_size`` (``G``, >= 2).

    Raises:
        ValueError: ``group_size`` not an integer >= 2, ``values`` not 1-D or not divisible into groups.
        TypeError: non-floating ``values``.

    Example:
        >>> check_groups(torch.zeros(5), 2)
        Traceback (most recent call last):
        ...
        ValueError: the values must be 1-D with B * num_generations entries (rows of one prompt consecutive); got shape (5,) for num_generations=2.
    """  # noqa: E501
    problem = group_size_problem(group_size)
    if problem is not None:
        raise ValueError(f"`num_generations` (completions per prompt, G) {problem}.")
    if values.ndim != 1 or values.numel() % group_size:
        raise ValueError(
            f"the values must be 1-D with B * num_generations entries (rows of one prompt consecutive); "
            f"got shape {tuple(values.shape)} for num_generations={group_size}."
        )
    if not values.dtype.is_floating_point:
        raise TypeError(f"the values must be a floating-point tensor; got dtype {values.dtype}.")


def grouped(values: Tensor, group_size: int) -> Tensor:
    """``[B*G, ...]`` rows as ``[B, G, ...]``: one row per prompt.

    Example:
        >>> grouped(torch.arange(6), 3)
        tensor([[0, 1, 2],
                [3, 4, 5]])
    """
    return values.view(-1, group_size, *values.shape[1:])  # [B, G, ...]


def group_rows(keep: Tensor, group_size: int) -> Tensor:
    """``[B]`` per-group flags as ``[B*G]`` per-row flags (each group's flag on all its rows).

    Example:
        >>> group_rows(torch.tensor([True, False]), 2)
        tensor([ True,  True, False, False])
    """
    return keep.repeat_interleave(group_size)  # [N]


def tied_groups(values: Tensor, group_size: int) -> Tensor:
    """``[B]`` True for each group whose values span at most :data:`TIE_TOL` (all equal).

    Example:
        >>> tied_groups(torch.tensor([1.0, 2.0, 5.0, 5.0]), 2)
        tensor([False,  True])
    """
    rows = grouped(values, group_size)  # [B, G]
    return (rows.amax(-1) - rows.amin(-1)) <= TIE_TOL  # [B]


def best_worst_pairs(utilities: Tensor, group_size: int) -> tuple[Tensor, Tensor, Tensor]:
    """In each group, the row of the highest utility (chosen) and of the lowest (rejected).

    Returns:
        ``(chosen [B], rejected [B], valid [B])``: row indices into ``[B*G]``, and whether the pair carries a
        preference (False for tied groups, see :func:`tied_groups`). Among equal values the first row wins.

    Example:
        >>> best_worst_pairs(torch.tensor([0.1, 0.9, 0.5, 0.5]), 2)
        (tensor([1, 2]), tensor([0, 2]), tensor([ True, False]))
    """
    rows = grouped(utilities, group_size)  # [B, G]
    offsets = torch.arange(rows.shape[0], device=utilities.device) * group_size  # [B] first row of each group
    chosen = offsets + rows.argmax(-1)  # [B]
    rejected = offsets + rows.argmin(-1)  # [B]
    return chosen, rejected, ~tied_groups(utilities, group_size)


def finite_groups(rewards: Tensor, group_size: int) -> Tensor:
    """``[B]`` True for each group of ``group_size`` consecutive rows whose rewards are all finite.

    Example:
        >>> finite_groups(torch.tensor([[1.0, 0.0], [0.5, 0.5], [float("nan"), 1.0], [0.0, 1.0]]), 2)
        tensor([ True, False])
    """
    return grouped(torch.isfinite(rewards).all(-1), group_size).all(-1)  # [B]


__all__ = [
    "TIE_TOL",
    "best_worst_pairs",
    "check_groups",
    "finite_groups",
    "group_rows",
    "group_size_problem",
    "grouped",
    "tied_groups",
]
