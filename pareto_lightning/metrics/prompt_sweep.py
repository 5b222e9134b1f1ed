"""``PromptSweep``: mean rewards per (evaluation prompt, evaluation weight) pair, exact across batches and ranks."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric


class PromptSweep(Metric):
    """Mean reward vector of each (prompt, ``w``) pair of an evaluation sweep: the input of per-prompt steering.

    ``PreferenceSweep`` averages over the prompts of each weight; this keeps the prompts apart, so that
    :func:`~pareto_lightning.metrics.functional.prompt_steerability` can ask whether ``w`` steers each prompt's own
    completions. Each row is one (prompt, ``w``) pair given by its prompt index ``p``, its weight index ``m`` and
    ``G >= 1`` reward vectors (one greedy completion, or ``G`` samples, averaged). The states (a reward sum
    ``[P, M, K]`` and a row count ``[P, M]``) are summed over ranks, so a sweep split across processes gives the
    one-process result.

    Args:
        num_prompts: ``P``, the evaluation prompts.
        num_weights: ``M``, the evaluation weights.
        num_objectives: ``K``.
        kwargs: passed to ``torchmetrics.Metric``.

    Example:
        >>> sweep = PromptSweep(num_prompts=2, num_weights=2, num_objectives=2)
        >>> sweep.update(torch.tensor([0, 1, 1]), torch.tensor([0, 0, 1]),
        ...              torch.tensor([[[0.9, 0.1]], [[0.6, 0.4]], [[0.2, 0.8]]]))
        >>> sweep.compute()  # prompt 0 at weight 1 was not evaluated
        tensor([[[0.9000, 0.1000],
                 [   nan,    nan]],
        <BLANKLINE>
                [[0.6000, 0.4000],
                 [0.2000, 0.8000]]], dtype=torch.float64)
    """

    is_differentiable = False
    higher_is_better = None
    full_state_update = False

    reward_sum: Tensor
    count: Tensor

    def __init__(self, num_prompts: int, num_weights: int, num_objectives: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        sizes = {"num_prompts": num_prompts, "num_weights": num_weights, "num_objectives": num_objectives}
        bad = [f"`{k}` must be an integer >= 1; got {v!r}." for k, v in sizes.items()
               if isinstance(v, bool) or not isinstance(v, int) or v < 1]  # fmt: skip
        if bad:
            raise ValueError(" ".join(bad))
        p, m, k = num_prompts, num_weights, num_objectives
        self.add_state("reward_sum", default=torch.zeros(p, m, k, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.zeros(p, m, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, prompt_index: Tensor, weight_index: Tensor, rewards: Tensor) -> None:
        """Add rows: ``prompt_index [b]``, ``weight_index [b]`` and rewards ``[b, G, K]`` (``[b, K]`` for one each)."""
        rewards = rewards.to(self.reward_sum)
        if rewards.dim() == 2:
            rewards = rewards[:, None]  # [b, 1, K]
        p_idx = prompt_index.to(self.count.device).long()  # [b]
        w_idx = weight_index.to(self.count.device).long()  # [b]
        p, m, k = self.reward_sum.shape
        if (
            rewards.dim() != 3
            or rewards.shape[0] != len(p_idx)
            or len(w_idx) != len(p_idx)
            or rewards.shape[2] != k
        ):
            raise ValueError(
                f"`rewards` must be [b, G, K={k}] with b = len(prompt_index) = len(weight_index) = {len(p_idx)}; "
                f"got rewards {tuple(rewards.shape)} and {len(w_idx)} weight indices."
            )
        if len(p_idx) and (p_idx.min() < 0 or p_idx.max() >= p or w_idx.min() < 0 or w_idx.max() >= m):
            raise ValueError(f"prompt indices must lie in [0, {p}) and weight indices in [0, {m}).")
        if not torch.isfinite(rewards).all():
            raise ValueError("`rewards` of the evaluation sweep must be finite.")
        flat = p_idx * m + w_idx  # [b] row of the pair in the flattened [P * M] grid
        self.reward_sum.view(p * m, k).index_add_(0, flat, rewards.mean(1))
        self.count.view(p * m).index_add_(0, flat, torch.ones_like(flat))

    def compute(self) -> Tensor:
        """``[P, M, K]`` mean reward per pair over every row seen (all processes); NaN for pairs with no row."""
        n = self.count.to(self.reward_sum.dtype)  # [P, M]
        return self.reward_sum / n.masked_fill(n == 0, float("nan"))[..., None]


__all__ = ["PromptSweep"]
