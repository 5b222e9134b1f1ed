"""``PreferenceSweep``: per-preference mean rewards and shortfalls of an evaluation sweep (a torchmetrics Metric)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor
from torchmetrics import Metric

from pareto_lightning.metrics.functional._checks import as_vector
from pareto_lightning.metrics.functional.utility import _check_mu, shortfall


class SweepMeans(NamedTuple):
    """Per evaluation weight: mean reward vector, mean shortfall (lower is better), rows seen."""

    points: Tensor  # [M, K]
    pu: Tensor  # [M]
    count: Tensor  # [M]


class PreferenceSweep(Metric):
    """Mean reward vector and preference-utility shortfall per evaluation weight, exact across batches and ranks.

    Each row is one (prompt, ``w``) pair of the sweep, given by its weight's index ``m`` and ``G >= 1`` reward
    vectors (one greedy completion, or ``G`` samples). Per weight it sums the row's mean reward vector and its
    mean shortfall ``mu * log sum_i exp(w_i (z*_i - r_i) / mu)`` over the ``G`` completions (the shortfall of
    each completion, then averaged: on a non-convex front the shortfall of a mean point would flatter a policy
    that randomizes), plus a row count; all three states are summed over ranks. **Lower shortfall is better.**

    Args:
        weights: ``[M, K]`` the evaluation weights (row ``m`` is weight index ``m``).
        mu: smoothing of the shortfall, ``> 0``.
        ideal_point: ``z*``, a float or a length-``K`` sequence.
        kwargs: passed to ``torchmetrics.Metric``.

    Example:
        >>> sweep = PreferenceSweep(torch.tensor([[1.0, 0.0], [0.5, 0.5]]))
        >>> sweep.update(torch.tensor([0, 1, 1]), torch.tensor([[[1.0, 0.0]], [[0.5, 0.5]], [[0.7, 0.3]]]))
        >>> means = sweep.compute()
        >>> means.points
        tensor([[1.0000, 0.0000],
                [0.6000, 0.4000]], dtype=torch.float64)
        >>> means.pu  # 0.1 log 2 for a perfect corner; (0.3193 + 0.3627) / 2 for the two rows at (0.5, 0.5)
        tensor([0.0693, 0.3410], dtype=torch.float64)
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    reward_sum: Tensor
    pu_sum: Tensor
    count: Tensor

    def __init__(
        self, weights: Tensor, mu: float = 0.1, ideal_point: float | Sequence[float] = 1.0, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        _check_mu(mu)
        if not isinstance(weights, Tensor) or weights.dim() != 2:
            raise ValueError(f"`weights` must be a [M, K] tensor of evaluation weights; got {weights!r}.")
        self.mu = float(mu)
        self.register_buffer("weights", weights.double(), persistent=False)  # moves with the metric
        self.ideal_point = as_vector(ideal_point, weights.shape[1], key="ideal_point")  # [] or [K]
        m, k = weights.shape
        self.add_state("reward_sum", default=torch.zeros(m, k, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("pu_sum", default=torch.zeros(m, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.zeros(m, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, weight_index: Tensor, rewards: Tensor) -> None:
        """Add rows: ``weight_index [b]`` and their rewards ``[b, G, K]`` (``[b, K]`` for one completion each)."""
        rewards = rewards.to(self.reward_sum)
        if rewards.dim() == 2:
            rewards = rewards[:, None]  # [b, 1, K]
        index = weight_index.to(self.reward_sum.device).long()  # [b]
        if rewards.dim() != 3 or rewards.shape[0] != len(index) or rewards.shape[2] != self.weights.shape[1]:
            raise ValueError(
                f"`rewards` must be [b={len(index)}, G, K={self.weights.shape[1]}]; got {tuple(rewards.shape)}."
            )
        if not torch.isfinite(rewards).all():
            raise ValueError("`rewards` of the evaluation sweep must be finite.")
        gaps = shortfall(
            rewards, self.weights[index][:, None], self.ideal_point.to(rewards), self.mu
        )  # [b, G]
        self.reward_sum.index_add_(0, index, rewards.mean(1))
        self.pu_sum.index_add_(0, index, gaps.mean(1))
        self.count.index_add_(0, index, torch.ones_like(index))

    def compute(self) -> SweepMeans:
        """Per-weight means over every row seen (all processes); weights with no row give NaN."""
        n = self.count.to(self.reward_sum.dtype)  # [M]
        missing = n == 0
        n = n.masked_fill(missing, float("nan"))
        return SweepMeans(points=self.reward_sum / n[:, None], pu=self.pu_sum / n, count=self.count.clone())


__all__ = ["PreferenceSweep", "SweepMeans"]
