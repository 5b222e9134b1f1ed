"""Per-objective reward normalizers (paper section A.2): max-based scaling, standardization, tanh squashing.

Reward models of different objectives can differ in scale, and a preference ``w`` only means what it says when
the objectives are comparable. A normalizer maps rewards ``[N, K]`` to ``[N, K]`` with statistics kept *per
objective*. Statistics are registered buffers, so they are saved in and restored from a Lightning checkpoint,
and under DDP/FSDP every update is reduced across ranks, so all ranks normalize identically.

The paper reports its results with max-based scaling (:class:`MaxNormalizer`); standardization behaved similarly
and tanh squashing often led to policy collapse.
"""

from __future__ import annotations

import torch
from torch import Tensor

from pareto_lightning.renamed import old_names
from pareto_lightning.rewards.functional import max_abs_across_ranks, merge_moments, moments_across_ranks
from pareto_lightning.rewards.normalizer_base import _KEY, RewardNormalizer


def _check_eps(eps: float) -> float:
    if not eps > 0:
        raise ValueError(f"`eps` must be > 0 ({_KEY}.eps); got {eps}.")
    return float(eps)


class MaxNormalizer(RewardNormalizer):
    """Max-based scaling (the paper's choice): ``r / max|r|``, the maximum running over every batch seen.

    Each objective is divided by the largest absolute reward seen so far for that objective (over all ranks),
    so normalized rewards lie in ``[-1, 1]``. An objective whose rewards have all been 0 is left unscaled.

    Args:
        eps: lower bound on the divisor, against division by a vanishing maximum.
        freeze_after: stop updating the maximum after this many updates (``None``: never).

    Example:
        >>> scaler = MaxNormalizer()
        >>> scaler(torch.tensor([[1.0, -2.0], [3.0, 1.0]]))  # max |r| = [3, 2]
        tensor([[ 0.3333, -1.0000],
                [ 1.0000,  0.5000]])
        >>> scaler.max_abs
        tensor([3., 2.], dtype=torch.float64)
    """

    _per_objective_buffers = ("max_abs",)
    max_abs: Tensor

    def __init__(self, eps: float = 1e-8, freeze_after: int | None = None) -> None:
        super().__init__(freeze_after=freeze_after)
        self.eps = _check_eps(eps)

    def _update_statistics(self, rewards: Tensor) -> None:
        batch_max = max_abs_across_ranks(rewards.to(self.max_abs))  # [K]
        torch.maximum(self.max_abs, batch_max, out=self.max_abs)

    def _normalize(self, rewards: Tensor) -> Tensor:
        scale = self.max_abs.to(rewards.device, rewards.dtype)  # [K]
        scale = torch.where(scale > 0, scale.clamp_min(self.eps), torch.ones_like(scale))
        return rewards / scale

    def extra_repr(self) -> str:
        return f"eps={self.eps}, {super().extra_repr()}"


class ZScoreNormalizer(RewardNormalizer):
    """Standardization by the running mean and variance: ``(r - mean) / sqrt(var + eps)``.

    The running statistics cover every reward seen (over all ranks); each batch is merged with Chan's parallel
    form of Welford's algorithm (:func:`~pareto_lightning.rewards.functional.merge_moments`). ``var`` is the
    population variance (``M2 / count``, no Bessel correction).

    Args:
        eps: added to the variance, so a constant objective maps to 0 instead of dividing by 0.
        freeze_after: stop updating the statistics after this many updates (``None``: never).

    Example:
        >>> std = ZScoreNormalizer()
        >>> std(torch.tensor([[1.0, 10.0], [3.0, 10.0]]))  # mean [2, 10], var [1, 0]
        tensor([[-1.,  0.],
                [ 1.,  0.]])
        >>> std.mean, std.var
        (tensor([ 2., 10.], dtype=torch.float64), tensor([1., 0.], dtype=torch.float64))
    """

    _per_objective_buffers = ("mean", "m2")
    mean: Tensor
    m2: Tensor
    count: Tensor

    def __init__(self, eps: float = 1e-8, freeze_after: int | None = None) -> None:
        super().__init__(freeze_after=freeze_after)
        self.eps = _check_eps(eps)
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))

    @property
    def var(self) -> Tensor:
        """``[K]`` population variance of every reward seen (empty until the statistics are sized)."""
        return self.m2 / self.count.clamp_min(1)

    def _update_statistics(self, rewards: Tensor) -> None:
        batch = moments_across_ranks(rewards.to(self.mean))  # (count, mean [K], m2 [K])
        count, mean, m2 = merge_moments(self.count, self.mean, self.m2, *batch)
        self.count.copy_(count)
        self.mean.copy_(mean)
        self.m2.copy_(m2)

    def _normalize(self, rewards: Tensor) -> Tensor:
        mean = self.mean.to(rewards.device, rewards.dtype)  # [K]
        std = (self.var + self.eps).sqrt().to(rewards.device, rewards.dtype)  # [K]
        return (rewards - mean) / std

    def extra_repr(self) -> str:
        return f"eps={self.eps}, {super().extra_repr()}"


class TanhNormalizer(RewardNormalizer):
    """``tanh(r / scale)``: bounds rewards to ``(-1, 1)`` without statistics.

    The paper found this often led to unstable training and policy collapse (saturated rewards lose the
    ordering of good completions); it is provided for comparison.

    Args:
        scale: reward magnitude mapped to ``tanh(1) ~ 0.76``, ``> 0``.

    Example:
        >>> TanhNormalizer(scale=2.0)(torch.tensor([[0.0, 2.0]]))
        tensor([[0.0000, 0.7616]])
    """

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        if not scale > 0:
            raise ValueError(f"`scale` must be > 0 ({_KEY}.scale); got {scale}.")
        self.scale = float(scale)

    def _normalize(self, rewards: Tensor) -> Tensor:
        return torch.tanh(rewards / self.scale)

    def extra_repr(self) -> str:
        return f"scale={self.scale}"


class IdentityNormalizer(RewardNormalizer):
    """Leaves rewards unchanged (still checks that they are finite and ``[N, K]``).

    Example:
        >>> IdentityNormalizer()(torch.tensor([[0.5, -2.0]]))
        tensor([[ 0.5000, -2.0000]])
    """

    def _normalize(self, rewards: Tensor) -> Tensor:
        return rewards


__all__ = ["IdentityNormalizer", "MaxNormalizer", "ZScoreNormalizer", "TanhNormalizer"]

__getattr__ = old_names(__name__)  # the old names of renamed objects (pareto_lightning.renamed)
