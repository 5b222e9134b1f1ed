"""Meta tasks in parallel: the data-parallel ranks split into ``B`` groups, one preference (task) per group.

Used by ``MetaLoop(parallel_tasks=True)`` under DDP. Each group adapts from the same anchor on its own
preference and prompts, with gradients averaged inside the group only (a DDP communication hook on the group's
process group); at the end of the task the deltas are summed over groups with one all-reduce, and every rank
applies the same meta step. A meta-iteration then takes ``S`` optimizer steps instead of ``B * S``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch.distributed as dist
from torch import Tensor

from pareto_lightning.data.contract import PreferenceData, update_schedule


def task_group(rank: int, world_size: int, num_tasks: int) -> tuple[int, list[list[int]]]:
    """This rank's task index and the ranks of every task group (consecutive blocks of ``world / B`` ranks).

    Example:
        >>> task_group(rank=3, world_size=4, num_tasks=2)
        (1, [[0, 1], [2, 3]])
    """
    if num_tasks < 1 or world_size % num_tasks:
        raise ValueError(
            f"`trainer.callbacks[i].init_args.parallel_tasks: true` needs the number of processes ({world_size}) "
            f"to be a multiple of `trainer.callbacks[i].init_args.tasks_per_meta_step`={num_tasks}."
        )
    size = world_size // num_tasks
    return rank // size, [list(range(g * size, (g + 1) * size)) for g in range(num_tasks)]


def split_into_task_groups(trainer: Any, data: PreferenceData | None, num_tasks: int) -> int:
    """Check the strategy, give the data module this rank's group, and return the ranks per group."""
    from lightning.pytorch.strategies import DDPStrategy

    if not isinstance(trainer.strategy, DDPStrategy):
        raise ValueError(
            "`trainer.callbacks[i].init_args.parallel_tasks: true` runs under `trainer.strategy: ddp`; got "
            f"{type(trainer.strategy).__name__} (under FSDP2 every group would need its own replica)."
        )
    group, _ = task_group(trainer.global_rank, trainer.world_size, num_tasks)
    update_schedule(data, preference_group=(group, num_tasks))  # each group trains on its own preference
    return trainer.world_size // num_tasks


def average_gradients_within(ddp_model: object, ranks: list[list[int]], mine: int) -> list[Any]:
    """Make ``ddp_model`` average gradients inside this rank's group only (every rank creates every group).

    Returns the process groups made, for :func:`release_groups` when training ends.
    """
    from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook

    # Collective: the same calls, in the same order, on every rank.
    groups = [dist.new_group(r) for r in ranks]
    ddp_model.register_comm_hook(groups[mine], allreduce_hook)
    return groups


def release_groups(groups: list[Any]) -> list[Any]:
    """Destroy the task groups (a gloo group left alive aborts the process when it exits); returns ``[]``."""
    if dist.is_available() and dist.is_initialized():
        for group in groups:
            dist.destroy_process_group(group)
    return []


def sum_over_tasks(deltas: Mapping[str, Tensor], group_size: int) -> dict[str, Tensor]:
    """``sum_j (theta_j - theta_0)`` over the task groups: an all-reduce over every rank, each group's ranks
    holding the same delta, divided by the group size (in place, one collective per tensor)."""
    for delta in deltas.values():
        dist.all_reduce(delta, op=dist.ReduceOp.SUM)
        delta.div_(group_size)
    return dict(deltas)


__all__ = [
    "average_gradients_within",
    "release_groups",
    "split_into_task_groups",
    "sum_over_tasks",
    "task_group",
]
