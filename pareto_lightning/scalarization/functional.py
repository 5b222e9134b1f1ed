"""Scalarization functions: a reward vector and a preference become one utility to maximize.

All functions take ``rewards [..., K]`` and ``weights [..., K]`` (broadcastable) and return ``[...]``; larger is
better. References: linear scalarization ``w^T r``; the Tchebycheff and smooth Tchebycheff scalarizations of
Lin et al., "Smooth Tchebycheff Scalarization for Multi-Objective Optimization" (2024), used by the paper
(section 2.5) as ``S_Tch(r, w) = -mu * log sum_i exp(w_i (z*_i - r_i) / mu)``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from pareto_lightning.renamed import old_names


def _check_shapes(rewards: Tensor, weights: Tensor) -> None:
    if rewards.shape[-1] != weights.shape[-1]:
        raise ValueError(
            f"rewards have {rewards.shape[-1]} objectives but weights have {weights.shape[-1]}; "
            "the preference dimension K must match the number of reward functions."
        )


def weighted_sum(rewards: Tensor, weights: Tensor) -> Tensor:
    """Linear scalarization ``sum_i w_i r_i``.

    Example:
        >>> weighted_sum(torch.tensor([0.2, 0.8]), torch.tensor([0.5, 0.5]))
        tensor(0.5000)
    """
    _check_shapes(rewards, weights)
    return (weights * rewards).sum(-1)


def _gaps(rewards: Tensor, weights: Tensor, ideal_point: Tensor | float) -> Tensor:
    ideal = torch.as_tensor(ideal_point, dtype=rewards.dtype, device=rewards.device)
    return weights * (ideal - rewards)  # [..., K] weighted shortfall from the ideal point


def mu_problem(mu: float) -> str | None:
    """What is wrong with a smoothing ``mu`` (a finite number > 0), naming the argument; None when it is fine.

    The one check of ``mu`` for the smooth Tchebycheff scalarizer, the preference utility and the evaluation.

    Example:
        >>> mu_problem(0.1) is None
        True
        >>> mu_problem(0)
        '`mu` must be a finite float > 0 (the smoothing); got 0'
    """
    if isinstance(mu, bool) or not isinstance(mu, (int, float)) or not 0 < mu < float("inf"):
        return f"`mu` must be a finite float > 0 (the smoothing); got {mu!r}"
    return None


def smooth_tchebycheff(
    rewards: Tensor, weights: Tensor, ideal_point: Tensor | float = 1.0, mu: float = 0.1
) -> Tensor:
    """Smooth Tchebycheff ``-mu * log sum_i exp(w_i (z*_i - r_i) / mu)``.

    Computed with ``torch.logsumexp`` (which subtracts the maximum first), so it stays finite for tiny ``mu`` and
    large rewards. It bounds the hard Tchebycheff value: ``tch - mu log K <= stch <= tch``.

    Example:
        >>> r, w = torch.tensor([0.5, 0.5]), torch.tensor([0.5, 0.5])
        >>> smooth_tchebycheff(r, w, ideal_point=1.0, mu=0.1)  # -(0.25 + 0.1 * log 2)
        tensor(-0.3193)
    """
    problem = mu_problem(mu)
    if problem is not None:
        raise ValueError(problem + ".")
    _check_shapes(rewards, weights)
    return -mu * torch.logsumexp(_gaps(rewards, weights, ideal_point) / mu, dim=-1)


def tchebycheff(rewards: Tensor, weights: Tensor, ideal_point: Tensor | float = 1.0) -> Tensor:
    """Hard Tchebycheff ``-max_i w_i (z*_i - r_i)``.

    Example:
        >>> tchebycheff(torch.tensor([0.2, 0.8]), torch.tensor([0.5, 0.5]), ideal_point=1.0)
        tensor(-0.4000)
    """
    _check_shapes(rewards, weights)
    return -_gaps(rewards, weights, ideal_point).amax(-1)


def steering_bonus(rewards: Tensor, weights: Tensor) -> Tensor:
    """``sum_i (w_i - 1/K) r_i``: how far ``r`` leans the way ``w`` leans away from the simplex centre.

    Averaged over preferences drawn with mean ``1/K`` (any symmetric Dirichlet), it is the covariance between
    weights and rewards, ``E_w[(w - E w)^T r] = sum_i Cov(w_i, r_i)``, the quantity a per-prompt Spearman
    correlation between ``w_i`` and ``r_i`` ranks. Added to a utility, it rewards each completion for differing
    from what the other weights would write, for the prompt it was written for. It is zero at the centre
    ``w = (1/K, ..., 1/K)``, and not monotone in every reward (it lowers the utility of what ``w`` weighs least).

    Example:
        >>> steering_bonus(torch.tensor([0.8, 0.2]), torch.tensor([0.9, 0.1]))  # 0.4 * 0.8 - 0.4 * 0.2
        tensor(0.2400)
        >>> steering_bonus(torch.tensor([0.8, 0.2]), torch.tensor([0.5, 0.5]))
        tensor(0.)
    """
    _check_shapes(rewards, weights)
    return ((weights - 1.0 / weights.shape[-1]) * rewards).sum(-1)


__all__ = ["mu_problem", "smooth_tchebycheff", "steering_bonus", "tchebycheff", "weighted_sum"]

__getattr__ = old_names(__name__)  # the old names of renamed objects (pareto_lightning.renamed)
