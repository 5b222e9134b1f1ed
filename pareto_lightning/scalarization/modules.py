"""Pluggable scalarizers: small ``nn.Module`` wrappers of :mod:`pareto_lightning.scalarization.functional`.

A scalarizer is chosen in YAML with ``class_path``/``init_args``; algorithm modules call it as
``scalarizer(rewards [N, K], weights [N, K]) -> utilities [N]`` and never switch on strings.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from pareto_lightning.config_errors import quote_keys
from pareto_lightning.renamed import old_names
from pareto_lightning.scalarization import functional as F


class Scalarizer(nn.Module):
    """Base class: maps ``rewards [..., K]`` and ``weights [..., K]`` to utilities ``[...]`` (maximized)."""

    def check_num_objectives(self, k: int) -> None:
        """Refuse an ``ideal_point`` that is neither one value nor ``K`` values (checked when a module is built).

        Example:
            >>> SmoothTchebycheff(ideal_point=[1.0, 1.0, 1.0]).check_num_objectives(2)
            Traceback (most recent call last):
            ...
            ValueError: `model.init_args.scalarizer.init_args.ideal_point` has 3 values but there are K=2 ...
        """
        ideal = getattr(self, "ideal_point", None)
        if ideal is not None and ideal.numel() not in (1, k):
            raise ValueError(
                f"`model.init_args.scalarizer.init_args.ideal_point` has {ideal.numel()} values but there are K={k} "
                f"objectives (`model.init_args.policy.init_args.objective_names`); give one value or {k}."
            )

    def forward(self, rewards: Tensor, weights: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


def _ideal_buffer(ideal_point: float | Sequence[float]) -> Tensor:
    t = torch.as_tensor(ideal_point, dtype=torch.float32)
    if t.dim() > 1 or not torch.isfinite(t).all():
        raise ValueError(f"`ideal_point` must be a finite float or a length-K sequence; got {ideal_point!r}.")
    return t


class WeightedSum(Scalarizer):
    """``w^T r``: the Grid-GRPO and MO-ODPO utility. Its maximizers lie on the convex hull of the front.

    Example:
        >>> WeightedSum()(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.3, 0.7]]))
        tensor([0.3000])
    """

    def forward(self, rewards: Tensor, weights: Tensor) -> Tensor:
        return F.weighted_sum(rewards, weights.to(rewards.dtype))


class SmoothTchebycheff(Scalarizer):
    """Smooth Tchebycheff utility (paper section 2.5): reaches non-convex parts of the front.

    Args:
        mu: smoothing, ``> 0``; as ``mu -> 0`` it tends to the hard Tchebycheff value (within ``mu log K``).
        ideal_point: the utopia point ``z*``, a float or a length-``K`` sequence (1.0 suits rewards in [0, 1]).

    Example:
        >>> SmoothTchebycheff(mu=0.1)(torch.tensor([0.5, 0.5]), torch.tensor([0.5, 0.5]))
        tensor(-0.3193)
    """

    def __init__(self, mu: float = 0.1, ideal_point: float | Sequence[float] = 1.0) -> None:
        super().__init__()
        problem = F.mu_problem(mu)
        if problem is not None:
            raise ValueError(quote_keys([problem], "model.init_args.scalarizer.init_args")[0])
        self.mu = float(mu)
        self.register_buffer("ideal_point", _ideal_buffer(ideal_point), persistent=False)

    def forward(self, rewards: Tensor, weights: Tensor) -> Tensor:
        return F.smooth_tchebycheff(
            rewards, weights.to(rewards.dtype), self.ideal_point.to(rewards.dtype), self.mu
        )

    def extra_repr(self) -> str:
        return f"mu={self.mu}, ideal_point={self.ideal_point.tolist()}"


class Tchebycheff(Scalarizer):
    """Hard Tchebycheff utility ``-max_i w_i (z*_i - r_i)``.

    Example:
        >>> Tchebycheff()(torch.tensor([0.2, 0.8]), torch.tensor([0.5, 0.5]))
        tensor(-0.4000)
    """

    def __init__(self, ideal_point: float | Sequence[float] = 1.0) -> None:
        super().__init__()
        self.register_buffer("ideal_point", _ideal_buffer(ideal_point), persistent=False)

    def forward(self, rewards: Tensor, weights: Tensor) -> Tensor:
        return F.tchebycheff(rewards, weights.to(rewards.dtype), self.ideal_point.to(rewards.dtype))

    def extra_repr(self) -> str:
        return f"ideal_point={self.ideal_point.tolist()}"


class SteeringBonus(Scalarizer):
    """A scalarizer plus ``strength`` times the steering bonus ``sum_i (w_i - 1/K) r_i``.

    The bonus (:func:`~pareto_lightning.scalarization.functional.steering_bonus`) is the per-completion share of
    the covariance between the weights and the rewards: it pays a completion for leaning the way its ``w`` leans
    away from the centre, so every prompt is pushed to answer different weights differently, not only the average
    prompt. ``strength = 0`` is the wrapped scalarizer. With ``WeightedSum`` the sum is again linear, with the
    sharper weights ``(1 + strength) w - strength / K``.

    Args:
        scalarizer: the utility the bonus is added to (``SmoothTchebycheff``, ``WeightedSum``, ...).
        strength: the bonus's coefficient, a finite float >= 0.

    Example YAML (``model.init_args``)::

        scalarizer:
          class_path: pareto_lightning.SteeringBonus
          init_args:
            scalarizer: {class_path: pareto_lightning.SmoothTchebycheff, init_args: {mu: 0.1}}
            strength: 0.5

    Example:
        >>> bonus = SteeringBonus(WeightedSum(), strength=1.0)
        >>> bonus(torch.tensor([0.8, 0.2]), torch.tensor([0.9, 0.1]))  # 0.74 + 0.24
        tensor(0.9800)
    """

    def __init__(self, scalarizer: Scalarizer, strength: float = 0.5) -> None:
        super().__init__()
        if not isinstance(scalarizer, Scalarizer):
            raise TypeError(
                "`model.init_args.scalarizer.init_args.scalarizer` must be a Scalarizer (e.g. class_path: "
                f"pareto_lightning.SmoothTchebycheff); got {type(scalarizer).__name__}."
            )
        if (
            isinstance(strength, bool)
            or not isinstance(strength, (int, float))
            or not 0 <= strength < float("inf")
        ):
            raise ValueError(
                f"`model.init_args.scalarizer.init_args.strength` must be a finite float >= 0; got {strength!r}."
            )
        self.scalarizer = scalarizer
        self.strength = float(strength)

    def check_num_objectives(self, k: int) -> None:
        self.scalarizer.check_num_objectives(k)

    def forward(self, rewards: Tensor, weights: Tensor) -> Tensor:
        weights = weights.to(rewards.dtype)
        return self.scalarizer(rewards, weights) + self.strength * F.steering_bonus(rewards, weights)

    def extra_repr(self) -> str:
        return f"strength={self.strength}"


__all__ = ["WeightedSum", "Scalarizer", "SmoothTchebycheff", "SteeringBonus", "Tchebycheff"]

__getattr__ = old_names(__name__)  # the old names of renamed objects (pareto_lightning.renamed)
