"""The per-objective reward normalizer interface: statistics in buffers, updated in training, reduced across ranks.

Concrete normalizers (:mod:`pareto_lightning.rewards.normalizers`) override ``_update_statistics`` and
``_normalize``; this base class owns the checks, the freezing, the lazily sized statistics and their dtype.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from pareto_lightning.rewards.functional import check_finite_rewards

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
        >>> from pareto_lightning.rewards import MaxNormalizer
        >>> norm = MaxNormalizer(freeze_after=1)
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
            >>> from pareto_lightning.rewards import MaxNormalizer
            >>> norm = MaxNormalizer()
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


__all__ = ["RewardNormalizer"]
