"""``Hypervolume``: exact hypervolume of every point seen, as a ``torchmetrics.Metric``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from pareto_lightning.metrics.functional._checks import as_vector
from pareto_lightning.metrics.functional.pareto import _hypervolume_compute, _hypervolume_update
from pareto_lightning.renamed import old_names


class Hypervolume(Metric):
    """Hypervolume (maximized objectives) of every point seen, above ``ref_point``; higher is better.

    Hypervolume is not a sum over batches, so every point that can add volume is kept (a list state gathered
    with ``"cat"`` across processes) and the exact value is computed once in :meth:`compute`. Points that do
    not strictly dominate ``ref_point`` add nothing and are dropped on arrival. Points are stored flattened
    (``[N*K]``) with ``K`` in a separate state so a process that saw no points still joins the gather. They
    are stored in the metric's dtype (float32 unless ``set_dtype(torch.float64)``).

    Args:
        ref_point: a float (for every objective) or a length-``K`` sequence, finite. With rewards in
            ``[0, 1]`` a reference of 0 gives a corner point such as (1, 0) zero volume; a value slightly
            below the worst reward (e.g. -0.1) counts it.
        kwargs: passed to ``torchmetrics.Metric``.

    Example:
        >>> metric = Hypervolume(ref_point=0.0)
        >>> metric.update(torch.tensor([[1.0, 3.0], [2.0, 2.0]]))
        >>> metric.update(torch.tensor([[3.0, 1.0], [-1.0, 5.0]]))  # (-1, 5) is below the reference
        >>> metric.compute()
        tensor(6.)
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    points: list[Tensor] | Tensor
    num_objectives: Tensor

    def __init__(self, ref_point: float | Sequence[float], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ref_point = as_vector(ref_point, None, key="ref_point")  # [] or [K], float64, checked finite
        self.add_state("points", default=[], dist_reduce_fx="cat")
        # 0 until the first update; "max" lets a process without points learn K from the others.
        self.add_state("num_objectives", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="max")

    def update(self, points: Tensor) -> None:
        """Add points ``[N, K]`` (``K`` fixed by the first call and by a vector ``ref_point``)."""
        kept = _hypervolume_update(points, self.ref_point)  # [M, K]
        k = int(self.num_objectives)
        if k not in (0, kept.shape[1]):
            raise ValueError(
                "`points` must keep the same number of objectives across updates: "
                f"first {k}, now {kept.shape[1]}."
            )
        self.num_objectives = torch.full_like(self.num_objectives, kept.shape[1])
        self.points.append(kept.detach().to(self.dtype).flatten())  # [M*K]

    def compute(self) -> Tensor:
        """Exact hypervolume of every point seen (all processes); 0 when none adds volume."""
        k = int(self.num_objectives)
        stored = self.points
        flat = dim_zero_cat(stored) if isinstance(stored, Tensor) or len(stored) > 0 else None  # [N*K]
        if k == 0 or flat is None:
            return torch.zeros((), dtype=self.dtype, device=self.device)
        return _hypervolume_compute(flat.reshape(-1, k), self.ref_point)  # [N, K] -> []


__all__ = ["Hypervolume"]

__getattr__ = old_names(__name__)  # the old names of renamed objects (pareto_lightning.renamed)
