"""What one generation step produces (``Rollout``), and the pure token maths around it."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from pareto_lightning.losses.groups import group_rows


@dataclass
class Rollout:
    """``N = B * G`` sampled completions; rows ``g*G .. g*G+G-1`` belong to prompt ``g`` and share its ``w``."""

    prompts: list[str]  # [N] the raw prompts (without conditioning), repeated G times
    prompt_ids: Tensor  # [N, P] left-padded conditioned prompts
    prompt_mask: Tensor  # [N, P]
    completion_ids: Tensor  # [N, T] right-padded after EOS
    completion_mask: Tensor  # [N, T] 1 up to and including the first EOS
    completions: list[str]  # [N] decoded completion texts
    weights: Tensor  # [N, K]
    group_size: int

    def __len__(self) -> int:
        return len(self.completions)

    def select_groups(self, keep: Tensor) -> Rollout:
        """The rollout of the groups where ``keep [B]`` is True (rows of a group stay together)."""
        rows = group_rows(keep.to(self.weights.device), self.group_size)  # [N]
        index = rows.nonzero().squeeze(-1).tolist()
        return Rollout(
            prompts=[self.prompts[i] for i in index],
            prompt_ids=self.prompt_ids[rows.to(self.prompt_ids.device)],
            prompt_mask=self.prompt_mask[rows.to(self.prompt_mask.device)],
            completion_ids=self.completion_ids[rows.to(self.completion_ids.device)],
            completion_mask=self.completion_mask[rows.to(self.completion_mask.device)],
            completions=[self.completions[i] for i in index],
            weights=self.weights[rows],
            group_size=self.group_size,
        )


@dataclass
class SweepBatch:
    """One batch of the evaluation sweep, as the algorithm modules return it: raw rewards, on no normalizer's
    moving scale (``ParetoEvaluation`` decides the yardstick)."""

    weight_index: Tensor  # [b] row of each pair's weight in the data module's eval_weights
    weights: Tensor  # [b, K]
    greedy: Tensor  # [b, K] raw rewards of the greedy completion
    sampled: Tensor  # [b, G, K] raw rewards of G sampled completions
    prompts: list[str]  # [b]
    completions: list[str]  # [b] the greedy completions


def completion_mask(ids: Tensor, eos_token_id: int, pad_token_id: int) -> tuple[Tensor, Tensor]:
    """Keep each row up to and including its first EOS: returns ``(mask [N, T], ids padded after it)``.

    Example:
        >>> import torch
        >>> mask, ids = completion_mask(torch.tensor([[5, 2, 7, 2], [5, 6, 7, 8]]), eos_token_id=2, pad_token_id=0)
        >>> mask.tolist(), ids.tolist()
        ([[1, 1, 0, 0], [1, 1, 1, 1]], [[5, 2, 0, 0], [5, 6, 7, 8]])
    """
    is_eos = ids == eos_token_id  # [N, T]
    after_eos = (is_eos.cumsum(-1) - is_eos.long()) > 0  # [N, T] strictly after the first EOS
    return (~after_eos).long(), ids.masked_fill(after_eos, pad_token_id)


def position_ids(attention_mask: Tensor) -> Tensor:
    """Positions as ``generate`` assigns them to left-padded rows: 0 at each row's first real token.

    Example:
        >>> import torch
        >>> position_ids(torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])).tolist()
        [[0, 0, 0, 1, 2], [0, 1, 2, 3, 4]]
    """
    return (attention_mask.cumsum(-1) - 1).clamp_min(0)  # [N, L]


__all__ = ["Rollout", "SweepBatch", "completion_mask", "position_ids"]
