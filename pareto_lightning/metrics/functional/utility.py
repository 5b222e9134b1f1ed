"""Preference-utility shortfall: how far a reward vector falls short of the ideal point under ``w``.

The paper (Eq. 1 and Table 1) reports, for a preference ``w`` and the policy's reward vector ``r``, the
smoothed Tchebycheff shortfall ``mu * log sum_i exp(w_i (z*_i - r_i) / mu)``, i.e. ``-S_Tch(r, w)``. Lower is
better: it grows with the weighted gaps ``w_i (z*_i - r_i)``, and a reward vector at the ideal point ``z*``
scores ``mu * log K``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from pareto_lightning.metrics.functional._checks import as_vector
from pareto_lightning.preferences import validate_preference
from pareto_lightning.scalarization.functional import mu_problem, smooth_tchebycheff


def _check_mu(mu: float) -> None:
    problem = mu_problem(mu)
    if problem is not None:
        raise ValueError(problem + ".")


def shortfall(rewards: Tensor, weights: Tensor, ideal_point: float | Tensor = 1.0, mu: float = 0.1) -> Tensor:
    """Per-row shortfall ``mu * log sum_i exp(w_i (z*_i - r_i) / mu)``: the negated smooth Tchebycheff utility.

    The one place the shortfall is computed (the metrics, the evaluation sweep and the built-in task's oracle
    call it). No input checks: ``rewards [..., K]`` and ``weights [..., K]`` broadcast. Lower is better.

    Example:
        >>> shortfall(torch.tensor([[0.5, 0.5], [1.0, 0.0]]), torch.tensor([0.5, 0.5]))  # 0.25 + 0.1 log 2; ~0.5
        tensor([0.3193, 0.5007])
    """
    return -smooth_tchebycheff(rewards, weights, ideal_point=ideal_point, mu=mu)  # [...]


def _preference_utility_update(
    rewards: Tensor, weights: Any, ideal_point: float | Any = 1.0, mu: float = 0.1
) -> tuple[Tensor, int]:
    """Sum of the per-row shortfalls of one batch and the number of rows.

    Args:
        rewards: ``[N, K]`` reward vectors (``N`` may be 0).
        weights: ``[N, K]`` one preference per row, or ``[K]`` one preference for every row.
        ideal_point: ``z*``, a float or a length-``K`` sequence.
        mu: smoothing, ``> 0``.

    Returns:
        ``(sum of shortfalls, N)``; the sum has the floating dtype of ``rewards``.
    """
    _check_mu(mu)
    if not isinstance(rewards, Tensor):
        rewards = torch.as_tensor(rewards, dtype=torch.float64)
    if not rewards.is_floating_point():
        rewards = rewards.to(torch.get_default_dtype())
    if rewards.dim() != 2:
        raise ValueError(
            f"`rewards` must be a 2-D tensor [N, K] (one reward vector per row); "
            f"got shape {tuple(rewards.shape)}."
        )
    n, k = rewards.shape
    if not torch.isfinite(rewards).all():
        raise ValueError(
            f"`rewards` must be finite; got {int((~torch.isfinite(rewards)).sum())} NaN or inf entries."
        )
    w = validate_preference(weights, k, key="weights")
    if w.dim() not in (1, 2) or (w.dim() == 2 and w.shape[0] != n):
        raise ValueError(
            f"`weights` must be [K] (one for all rows) or [N, K] with N = {n} rows as in `rewards`; "
            f"got shape {tuple(w.shape)}."
        )
    w = w.to(dtype=rewards.dtype, device=rewards.device)  # [N, K] or [K]
    ideal = as_vector(ideal_point, k, key="ideal_point").to(
        dtype=rewards.dtype, device=rewards.device
    )  # [] or [K]
    return shortfall(rewards, w, ideal_point=ideal, mu=mu).sum(), n  # of [N]


def _preference_utility_compute(total: Tensor, count: Tensor | int) -> Tensor:
    """Mean shortfall ``total / count``; raises if no row was seen."""
    if int(count) == 0:
        raise ValueError("`preference_utility` needs at least one row of `rewards`; got none.")
    return total / count


def preference_utility(
    rewards: Tensor, weights: Any, ideal_point: float | Any = 1.0, mu: float = 0.1
) -> Tensor:
    """Mean smoothed-Tchebycheff shortfall ``mu * log sum_i exp(w_i (z*_i - r_i) / mu)`` over rows.

    This is the paper's preference utility (Table 1, section A.5). **Lower is better.** It equals
    :func:`shortfall` (the negated smooth Tchebycheff utility) averaged over rows, and it lies between the
    hard Tchebycheff gap ``max_i w_i (z*_i - r_i)`` and that gap plus ``mu * log K``.

    Args:
        rewards: ``[N, K]`` reward vectors, finite.
        weights: ``[N, K]`` (one preference per row) or ``[K]`` (shared); each row on the simplex.
        ideal_point: ``z*``, a float or a length-``K`` sequence (1.0 for rewards in ``[0, 1]``).
        mu: smoothing, ``> 0`` (the paper: 0.1).

    Returns:
        A scalar tensor with the dtype of ``rewards``.

    Raises:
        ValueError: for a shape mismatch, weights off the simplex, non-finite rewards, ``mu <= 0`` or no rows.

    Example:
        >>> r = torch.tensor([[0.5, 0.5]])
        >>> preference_utility(r, torch.tensor([0.5, 0.5]), ideal_point=1.0, mu=0.1)  # 0.25 + 0.1 * log 2
        tensor(0.3193)
        >>> r = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> preference_utility(r, torch.tensor([[1.0, 0.0], [0.0, 1.0]]), mu=0.1)  # no gap: mu * log 2
        tensor(0.0693)
    """
    total, count = _preference_utility_update(rewards, weights, ideal_point=ideal_point, mu=mu)
    return _preference_utility_compute(total, count)


__all__ = ["preference_utility", "shortfall"]
