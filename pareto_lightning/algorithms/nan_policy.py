"""``nan_policy: skip_group``: a training step drops the groups with a non-finite reward."""

from __future__ import annotations

from torch import Tensor

from pareto_lightning.losses.groups import finite_groups, group_rows
from pareto_lightning.rollout import Rollout


def drop_nonfinite_groups(
    rollout: Rollout, raw: Tensor, normalized: Tensor, step: int
) -> tuple[Rollout, Tensor, Tensor, int]:
    """The rollout and its ``[N, K]`` rewards without the groups that have a NaN/inf raw reward, and how many
    groups were dropped.

    Raises:
        ValueError: every group has one, so the step ``step`` would train on nothing.
    """
    keep = finite_groups(raw, rollout.group_size)  # [B]
    skipped = int((~keep).sum())
    if skipped == 0:
        return rollout, raw, normalized, 0
    if skipped == len(keep):
        raise ValueError(
            f"every group of step {step} has a NaN/inf reward, so `model.init_args.nan_policy: "
            "skip_group` leaves nothing to train on; fix the reward function or its inputs."
        )
    rows = group_rows(keep, rollout.group_size)  # [N]
    return rollout.select_groups(keep), raw[rows], normalized[rows], skipped


__all__ = ["drop_nonfinite_groups"]
