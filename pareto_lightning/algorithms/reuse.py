"""Reusing each rollout for several optimizer steps (GRPO's ``mu``, TRL's ``num_iterations``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from torch import Tensor

from pareto_lightning.rollout import Rollout


@dataclass
class FirstIteration:
    """What a loss keeps from a rollout's first optimizer step for its later ones (``num_iterations > 1``)."""

    advantages: Tensor  # [N]
    old_logp: Tensor  # [N, T] per-token log-probs under the policy that sampled the rollout
    ref_logp: Tensor | None  # [N, T] under the reference; None when the loss needs none


@dataclass
class ScoredRollout:
    """A rollout with its rewards and utilities, and what the loss kept from its first iteration."""

    rollout: Rollout
    raw: Tensor  # [N, K]
    normalized: Tensor  # [N, K]
    utilities: Tensor  # [N]
    skipped: int  # groups dropped for non-finite rewards
    first: FirstIteration | None = None  # None until the loss has seen the rollout once


class RolloutReuse:
    """Keeps each micro-batch's scored rollout for ``num_iterations`` optimizer steps.

    The rollout made at a step ``t`` with ``t % num_iterations == 0`` is used again at steps ``t + 1`` ..
    ``t + num_iterations - 1``, one per micro-batch index (gradient accumulation). Its state goes into
    checkpoints, so a run resumed between two iterations of a rollout continues with the same rollout.

    Example:
        >>> reuse = RolloutReuse(2)
        >>> reuse.get(step=0, micro=0) is None  # a new rollout is due
        True
    """

    def __init__(self, num_iterations: int = 1) -> None:
        self.num_iterations = num_iterations
        self._kept: dict[int, ScoredRollout] = {}

    def get(self, step: int, micro: int) -> ScoredRollout | None:
        """The rollout to train on at ``step`` (micro-batch ``micro``), or None when a new one is due."""
        if step % self.num_iterations == 0:
            self._kept.pop(micro, None)
            return None
        return self._kept.get(micro)

    def put(self, micro: int, scored: ScoredRollout) -> None:
        if self.num_iterations > 1:
            self._kept[micro] = scored

    def state_dict(self) -> dict[int, dict[str, Any]]:
        # Plain containers of tensors and strings: checkpoints load with weights_only=True.
        return {
            micro: {**{k: v for k, v in asdict(s).items() if k != "rollout"}, "rollout": asdict(s.rollout)}
            for micro, s in self._kept.items()
        }

    def load_state_dict(self, state: dict[int, dict[str, Any]]) -> None:
        self._kept = {int(micro): _scored(dict(entry)) for micro, entry in state.items()}


def _scored(entry: dict[str, Any]) -> ScoredRollout:
    # `loss_state`: the name of `first` in older checkpoints
    first = entry.pop("first", None) or entry.pop("loss_state", None)
    return ScoredRollout(
        **{**entry, "rollout": Rollout(**entry["rollout"])}, first=FirstIteration(**first) if first else None
    )

__all__ = [
    "FirstIteration",
    "RolloutReuse",
    "ScoredRollout",
]
