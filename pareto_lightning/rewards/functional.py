"""Plain-torch statistics behind the reward normalizers (paper section A.2), with their cross-rank reductions.

Everything here works on rewards ``[N, K]`` (``N`` completions, ``K`` objectives) and reduces over ``N``, so
each objective keeps its own statistics. The ``*_across_ranks`` helpers reduce over every process of an
initialized ``torch.distributed`` group so that all ranks of a DDP/FSDP run normalize with identical
statistics; with no group (or a single process) they equal the local computation.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.distributed as dist
from torch import Tensor


def check_finite_rewards(rewards: Tensor, names: Sequence[str] | None = None, where: str = "rewards") -> None:
    """Raise if any reward is NaN or infinite, naming the first objective (column) that has one.

    A non-finite reward is never averaged away: one NaN would poison every running statistic for the rest of
    the run.

    Args:
        rewards: ``[N, K]`` rewards.
        names: optional objective names, used in the message.
        where: what produced the rewards, quoted in the message.

    Raises:
        ValueError: naming the objective index (and name) and the number of bad values.

    Example:
        >>> check_finite_rewards(torch.tensor([[0.5, 1.0]]))
        >>> check_finite_rewards(torch.tensor([[0.5, float("nan")]]), names=["help", "harm"])
        Traceback (most recent call last):
        ...
        ValueError: rewards of objective 1 ('harm') contain 1 NaN/inf value(s) ...
    """
    bad = ~torch.isfinite(rewards)  # [N, K]
    if not bad.any():
        return
    per_objective = bad.sum(0)  # [K]
    k = int(torch.nonzero(per_objective)[0, 0])
    label = f"objective {k}" + (f" ({names[k]!r})" if names is not None and k < len(names) else "")
    raise ValueError(
        f"{where} of {label} contain {int(per_objective[k])} NaN/inf value(s) (first bad row "
        f"{int(torch.nonzero(bad[:, k])[0, 0])}); rewards must be finite: fix that reward function or its "
        f"inputs."
    )


def merge_moments(
    count: Tensor, mean: Tensor, m2: Tensor, batch_count: Tensor, batch_mean: Tensor, batch_m2: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """Merge two sets of moments ``(count, mean, M2)`` into those of the union (Chan, Golub, LeVeque 1979).

    With ``delta = mean_b - mean_a`` and ``n = n_a + n_b``::

        mean = mean_a + delta * n_b / n
        M2   = M2_a + M2_b + delta**2 * n_a * n_b / n

    where ``M2`` is the sum of squared deviations from the mean (variance ``= M2 / n``). This is the parallel
    form of Welford's update: it avoids the cancellation of ``sum(x**2) - n * mean**2``.

    Args:
        count: scalar count of the first set (may be 0).
        mean: ``[K]`` mean of the first set.
        m2: ``[K]`` sum of squared deviations of the first set.
        batch_count: scalar count of the second set.
        batch_mean: ``[K]`` mean of the second set.
        batch_m2: ``[K]`` sum of squared deviations of the second set.

    Returns:
        ``(count, mean, m2)`` of the union.

    Example:
        >>> # {1, 2} merged with {3, 4, 5}: mean 3, M2 = 4 + 1 + 0 + 1 + 4 = 10
        >>> n, mean, m2 = merge_moments(torch.tensor(2.0), torch.tensor([1.5]), torch.tensor([0.5]),
        ...                             torch.tensor(3.0), torch.tensor([4.0]), torch.tensor([2.0]))
        >>> n.item(), mean.item(), m2.item()
        (5.0, 3.0, 10.0)
    """
    total = count + batch_count
    denom = total.clamp_min(1)  # both sets empty: keep zeros instead of 0/0
    delta = batch_mean - mean  # [K]
    new_mean = mean + delta * (batch_count / denom)
    new_m2 = m2 + batch_m2 + delta.square() * (count * batch_count / denom)
    return total, new_mean, new_m2


def _world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def max_abs_across_ranks(rewards: Tensor) -> Tensor:
    """Per-objective ``max |r|`` of the batch, reduced with MAX over all ranks.

    Args:
        rewards: ``[N, K]`` rewards of this rank.

    Returns:
        ``[K]`` the largest absolute reward of each objective over every rank's batch.

    Example:
        >>> max_abs_across_ranks(torch.tensor([[1.0, -3.0], [-2.0, 0.5]]))
        tensor([2., 3.])
    """
    batch_max = rewards.abs().amax(dim=0)  # [K]
    if _world_size() > 1:
        dist.all_reduce(batch_max, op=dist.ReduceOp.MAX)
    return batch_max


def moments_across_ranks(rewards: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Count, mean and ``M2`` (sum of squared deviations) of the batch pooled over all ranks.

    Two SUM reductions: first ``(count, sum)`` gives the pooled mean, then the squared deviations *from that
    pooled mean* are summed. This is the exact two-pass result, without the cancellation of a sum of squares.

    Args:
        rewards: ``[N, K]`` rewards of this rank (ranks may hold different ``N``).

    Returns:
        ``(count, mean [K], m2 [K])``, the count a scalar of ``rewards``' dtype.

    Example:
        >>> n, mean, m2 = moments_across_ranks(torch.tensor([[1.0], [2.0], [6.0]]))
        >>> n.item(), mean.tolist(), m2.tolist()
        (3.0, [3.0], [14.0])
    """
    count_and_sum = torch.cat([rewards.new_tensor([rewards.shape[0]]), rewards.sum(dim=0)])  # [1 + K]
    if _world_size() > 1:
        dist.all_reduce(count_and_sum, op=dist.ReduceOp.SUM)
    count, mean = count_and_sum[0], count_and_sum[1:] / count_and_sum[0]  # [], [K]
    m2 = (rewards - mean).square().sum(dim=0)  # [K]
    if _world_size() > 1:
        dist.all_reduce(m2, op=dist.ReduceOp.SUM)
    return count, mean, m2

__all__ = [
    "check_finite_rewards",
    "max_abs_across_ranks",
    "merge_moments",
    "moments_across_ranks",
]
