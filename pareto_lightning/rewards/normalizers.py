"""Per-objective reward normalizers (paper section A.2): max-based scaling, standardization, tanh squashing.

Reward models of different objectives can differ in scale, and a preference ``w`` only means what it says when
the objectives are comparable. A normalizer maps rewards ``[N, K]`` to ``[N, K]`` with statistics kept *per
objective*. Statistics are registered buffers, so they are saved in and restored from a Lightning checkpoint,
and under DDP/FSDP every update is reduced across ranks, so all ranks normalize identically.

The paper reports its results with max-based scaling (:class:`MaxScaler`); standardization behaved similarly
and tanh squashing often led to policy collapse.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from pareto_lightning.rewards.functional import (
    check_finite_rewards,
    max_abs_across_ranks,
    merge_moments,
    moments_across_ranks,
)

_KEY = "model.init_args.reward.init_args.normalizer.init_args"


class RewardNormalizer(nn.Module):
    """Base class: ``forward(rewards [N, K]) -> normalized [N, K]``.

    In training mode (and unless frozen) ``forward`` first updates the statistics with the batch, then
    normalizes it; in eval mode it only normalizes. Before the first update there are no statistics and
    rewards pass through unchanged (for example during Lightning's sanity-check validation). Subclasses with
    statistics list their ``[K]`` buffers in ``_per_objective_buffers``; these are sized by
    :meth:`size_statistics` when ``K`` is known up front (``MultiObjectiveReward`` does it at construction, so
    every checkpoint of a module, distributed ones included, holds ``[K]`` statistics), otherwise at the first
    update; ``load_state_dict`` restores the saved size, so a checkpoint loads into a fresh instance.

    Args:
        freeze_after: stop updating the statistics after this many updates (``None``: never freeze; ``0``:
            never update, useful with statistics loaded from a checkpoint).

    Example:
        >>> norm = MaxScaler(freeze_after=1)
        >>> norm(torch.tensor([[2.0, -4.0]]))  # training mode: update (max |r| = [2, 4]), then normalize
        tensor([[ 1., -1.]])
        >>> norm(torch.tensor([[4.0, 1.0]]))  # frozen after one update: statistics unchanged
        tensor([[2.0000, 0.2500]])
        >>> int(norm.num_updates), norm.frozen
        (1, True)
    """

    _per_objective_buffers: tuple[str, ...] = ()

    def __init__(self, freeze_after: int | None = None) -> None:
        super().__init__()
        if freeze_after is not None and (isinstance(freeze_after, bool) or freeze_after < 0):
            raise ValueError(
                f"`freeze_after` must be None or an integer >= 0 ({_KEY}.freeze_after); got {freeze_after!r}."
            )
        self.freeze_after = freeze_after
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))
        for name in self._per_objective_buffers:
            self.register_buffer(name, torch.zeros(0, dtype=torch.float64))

    @property
    def frozen(self) -> bool:
        """Whether the statistics no longer change (``freeze_after`` updates done)."""
        return self.freeze_after is not None and int(self.num_updates) >= self.freeze_after

    @property
    def num_objectives(self) -> int | None:
        """``K`` of the statistics; ``None`` before they are sized or for a normalizer without any."""
        if not self._per_objective_buffers:
            return None
        size = getattr(self, self._per_objective_buffers[0]).numel()
        return size or None

    def size_statistics(self, num_objectives: int) -> None:
        """Size the ``[K]`` statistics before the first update (zeros; rewards still pass through unchanged).

        Args:
            num_objectives: ``K``. Statistics already sized to another ``K`` are refused.

        Example:
            >>> norm = MaxScaler()
            >>> norm.size_statistics(2)
            >>> norm.max_abs, norm.num_objectives, norm.normalize(torch.tensor([[3.0, -4.0]]))
            (tensor([0., 0.], dtype=torch.float64), 2, tensor([[ 3., -4.]]))
        """
        k = self.num_objectives
        if k is not None and k != num_objectives:
            raise ValueError(
                f"{type(self).__name__} holds statistics for K={k} objectives, not {num_objectives}; "
                "use one normalizer per reward setup."
            )
        for name in self._per_objective_buffers:
            buffer = getattr(self, name)
            if buffer.numel() == 0:
                buffer.resize_(num_objectives).zero_()  # in place: keeps buffer identity

    def forward(self, rewards: Tensor, names: Sequence[str] | None = None) -> Tensor:
        """Update the statistics (training mode, not frozen), then normalize.

        Args:
            rewards: ``[N, K]`` finite rewards.
            names: optional objective names for error messages.

        Returns:
            ``[N, K]`` normalized rewards, same dtype and device as ``rewards``.
        """
        if self.training:
            self.update(rewards, names)
        return self.normalize(rewards, names)

    def update(self, rewards: Tensor, names: Sequence[str] | None = None) -> None:
        """Merge a batch into the statistics (a no-op once frozen), reducing across ranks when distributed.

        Every rank must call it the same number of times (as every rank does in ``training_step``).

        Args:
            rewards: ``[N, K]`` finite rewards.
            names: optional objective names for error messages.
        """
        self._check(rewards, names)
        if self.frozen:
            return
        self.size_statistics(rewards.shape[1])
        self._update_statistics(rewards.detach())
        self.num_updates += 1

    def normalize(self, rewards: Tensor, names: Sequence[str] | None = None) -> Tensor:
        """Normalize with the current statistics, without updating them.

        Args:
            rewards: ``[N, K]`` finite rewards.
            names: optional objective names for error messages.

        Returns:
            ``[N, K]`` normalized rewards (``rewards`` unchanged before the first update).
        """
        self._check(rewards, names)
        if self._per_objective_buffers and int(self.num_updates) == 0:
            return rewards  # no statistics yet
        return self._normalize(rewards)

    # ---------------------------------------------------------------------------------------- override points
    def _update_statistics(self, rewards: Tensor) -> None:
        """Merge ``rewards [N, K]`` into the buffers (already sized to ``K``)."""

    def _normalize(self, rewards: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    # ---------------------------------------------------------------------------------------------- internals
    def _check(self, rewards: Tensor, names: Sequence[str] | None) -> None:
        if not isinstance(rewards, Tensor) or not rewards.is_floating_point():
            raise TypeError(
                f"{type(self).__name__} expects a floating tensor of rewards [N, K]; got {rewards!r}."
            )
        if rewards.dim() != 2 or rewards.shape[0] == 0:
            raise ValueError(
                f"{type(self).__name__} expects rewards of shape [N, K] with N >= 1; "
                f"got {tuple(rewards.shape)}."
            )
        k = self.num_objectives
        if k is not None and rewards.shape[1] != k:
            raise ValueError(
                f"{type(self).__name__} holds statistics for K={k} objectives but got rewards with "
                f"K={rewards.shape[1]}; use one normalizer per reward setup."
            )
        check_finite_rewards(rewards, names)

    def _load_from_state_dict(
        self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any
    ) -> None:
        # Statistics are sized lazily: resize in place to the saved size so a fresh instance accepts them.
        for name in self._per_objective_buffers:
            saved = state_dict.get(prefix + name)
            if isinstance(saved, Tensor):
                getattr(self, name).resize_(saved.shape)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _apply(self, fn: Any, recurse: bool = True) -> RewardNormalizer:
        # Statistics follow device moves but keep float64 under a dtype cast (e.g. Lightning's "bf16-true"):
        # a bf16 count stops counting at 256 and a bf16 mean drifts.
        stats = {n: b for n, b in self._buffers.items() if b is not None and b.is_floating_point()}
        self._buffers.update(dict.fromkeys(stats))
        try:
            super()._apply(fn, recurse)
        finally:
            for name, buffer in stats.items():
                moved = fn(buffer)
                self._buffers[name] = moved if moved.dtype == buffer.dtype else buffer.to(moved.device)
        return self

    def extra_repr(self) -> str:
        return f"freeze_after={self.freeze_after}"


def _check_eps(eps: float) -> float:
    if not eps > 0:
        raise ValueError(f"`eps` must be > 0 ({_KEY}.eps); got {eps}.")
    return float(eps)


class MaxScaler(RewardNormalizer):
    """Max-based scaling (the paper's choice): ``r / max|r|``, the maximum running over every batch seen.

    Each objective is divided by the largest absolute reward seen so far for that objective (over all ranks),
    so normalized rewards lie in ``[-1, 1]``. An objective whose rewards have all been 0 is left unscaled.

    Args:
        eps: lower bound on the divisor, against division by a vanishing maximum.
        freeze_after: stop updating the maximum after this many updates (``None``: never).

    Example:
        >>> scaler = MaxScaler()
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


class Standardizer(RewardNormalizer):
    """Standardization by the running mean and variance: ``(r - mean) / sqrt(var + eps)``.

    The running statistics cover every reward seen (over all ranks); each batch is merged with Chan's parallel
    form of Welford's algorithm (:func:`~pareto_lightning.rewards.functional.merge_moments`). ``var`` is the
    population variance (``M2 / count``, no Bessel correction).

    Args:
        eps: added to the variance, so a constant objective maps to 0 instead of dividing by 0.
        freeze_after: stop updating the statistics after this many updates (``None``: never).

    Example:
        >>> std = Standardizer()
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


class TanhSquash(RewardNormalizer):
    """``tanh(r / scale)``: bounds rewards to ``(-1, 1)`` without statistics.

    The paper found this often led to unstable training and policy collapse (saturated rewards lose the
    ordering of good completions); it is provided for comparison.

    Args:
        scale: reward magnitude mapped to ``tanh(1) ~ 0.76``, ``> 0``.

    Example:
        >>> TanhSquash(scale=2.0)(torch.tensor([[0.0, 2.0]]))
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
