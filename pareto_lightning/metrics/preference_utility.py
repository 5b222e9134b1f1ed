"""``PreferenceUtility``: the paper's Table-1 preference-utility shortfall as a ``torchmetrics.Metric``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric

from pareto_lightning.metrics.functional._checks import as_vector
from pareto_lightning.metrics.functional.utility import (
    _check_mu,
    _preference_utility_compute,
    _preference_utility_update,
)


class PreferenceUtility(Metric):
    """Mean smoothed-Tchebycheff shortfall ``mu * log sum_i exp(w_i (z*_i - r_i) / mu)``; **lower is better**.

    Accumulates a running sum and row count, so it is exact across batches and processes (both states are
    summed over ranks). See :func:`pareto_lightning.metrics.functional.preference_utility` for the maths.

    Args:
        mu: smoothing of the shortfall, ``> 0`` (the paper: 0.1).
        ideal_point: utopia point ``z*``, a float or a length-``K`` sequence (1.0 for rewards in ``[0, 1]``).
        kwargs: passed to ``torchmetrics.Metric`` (e.g. ``sync_on_compute``).

    Example:
        >>> metric = PreferenceUtility(mu=0.1, ideal_point=1.0)
        >>> metric.update(torch.tensor([[0.5, 0.5]]), torch.tensor([0.5, 0.5]))
        >>> metric.update(torch.tensor([[1.0, 0.0]]), torch.tensor([1.0, 0.0]))
        >>> metric.compute()  # mean of 0.25 + 0.1 log 2 and 0.1 log 2
        tensor(0.1943)
    """

    is_differentiable = True
    higher_is_better = False
    full_state_update = False

    total: Tensor
    count: Tensor

    def __init__(self, mu: float = 0.1, ideal_point: float | Sequence[float] = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _check_mu(mu)
        self.mu = float(mu)
        self.ideal_point = as_vector(
            ideal_point, None, key="ideal_point"
        )  # [] or [K], float64, checked finite
        self.add_state("total", default=torch.tensor(0.0), dist_reduce_fx="sum")
        # An integer count stays exact however many rows are seen.
        self.add_state("count", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, rewards: Tensor, weights: Tensor | Sequence[float]) -> None:
        """Add a batch: ``rewards`` ``[N, K]``, ``weights`` ``[N, K]`` or ``[K]``."""
        total, count = _preference_utility_update(rewards, weights, ideal_point=self.ideal_point, mu=self.mu)
        self.total = self.total + total.to(self.total.dtype)
        self.count = self.count + count

    def compute(self) -> Tensor:
        """Mean shortfall over every row seen (all processes)."""
        return _preference_utility_compute(self.total, self.count)


__all__ = ["PreferenceUtility"]
