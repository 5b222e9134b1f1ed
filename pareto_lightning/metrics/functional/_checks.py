"""Input checks shared by the functional metrics (internal)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


def as_points(points: Any, key: str = "points") -> Tensor:
    """``points`` as a finite floating ``[N, K]`` tensor (``N`` may be 0), or a ValueError naming ``key``."""
    t = points if isinstance(points, Tensor) else torch.as_tensor(points, dtype=torch.float64)
    if not t.is_floating_point():
        t = t.to(torch.get_default_dtype())
    if t.dim() != 2 or t.shape[1] < 1:
        raise ValueError(
            f"`{key}` must be a 2-D tensor [N, K] (one row per point, K >= 1 objectives); "
            f"got shape {tuple(t.shape)}."
        )
    if not torch.isfinite(t).all():
        raise ValueError(
            f"`{key}` must be finite; got {int((~torch.isfinite(t)).sum())} NaN or infinite entries."
        )
    return t


def as_vector(value: Any, num_objectives: int | None, key: str) -> Tensor:
    """A finite float64 scalar or length-``K`` vector (``K`` checked when known), e.g. ``ref_point``."""
    t = torch.as_tensor(value.detach().cpu() if isinstance(value, Tensor) else value, dtype=torch.float64)
    wrong_length = t.dim() == 1 and (
        t.numel() == 0 or (num_objectives is not None and t.numel() != num_objectives)
    )
    if t.dim() > 1 or wrong_length:
        want = (
            "a float or a non-empty sequence of floats"
            if num_objectives is None
            else (f"a float or a sequence of {num_objectives} floats (one per objective)")
        )
        raise ValueError(f"`{key}` must be {want}; got shape {tuple(t.shape)} and value {t.tolist()}.")
    if not torch.isfinite(t).all():
        raise ValueError(f"`{key}` must be finite; got {t.tolist()}.")
    return t

__all__ = [
    "as_points",
    "as_vector",
]
