"""What a step reports: its ``train/*`` values, sample completions as a table, and prediction records."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor

from pareto_lightning.algorithms.reuse import ScoredRollout
from pareto_lightning.rollout import Rollout


def sample_table(rollout: Rollout, raw: Tensor, names: Sequence[str]) -> str:
    """The first completion of each group of ``rollout``, with its ``w`` and its raw rewards ``raw [N, K]``.

    Example:
        >>> import torch
        >>> r = Rollout(["hi", "hi"], torch.zeros(2, 1), torch.ones(2, 1), torch.zeros(2, 1), torch.ones(2, 1),
        ...             ["a", "b"], torch.tensor([[0.25, 0.75]] * 2), group_size=2)
        >>> print(sample_table(r, torch.tensor([[1.0, 0.0], [0.0, 1.0]]), ["help", "harm"]))
        | w | prompt | completion | rewards |
        |---|---|---|---|
        | 0.25, 0.75 | hi | a | help=1.000, harm=0.000 |
    """
    rows = ["| w | prompt | completion | rewards |", "|---|---|---|---|"]
    for i in range(0, len(rollout), rollout.group_size):  # the first row of each group
        w = ", ".join(f"{x:.2f}" for x in rollout.weights[i].tolist())
        r = ", ".join(f"{n}={v:.3f}" for n, v in zip(names, raw[i].tolist(), strict=True))
        rows.append(f"| {w} | {rollout.prompts[i]} | {rollout.completions[i]} | {r} |")
    return "\n".join(rows)


def prediction_rows(rollout: Rollout, raw: Tensor, names: Sequence[str]) -> list[dict[str, Any]]:
    """One record per completion: prompt, ``w`` and raw rewards by objective name (the paper's Table 2 view).

    Example:
        >>> import torch
        >>> r = Rollout(["hi"], torch.zeros(1, 1), torch.ones(1, 1), torch.zeros(1, 1), torch.ones(1, 1),
        ...             ["a"], torch.tensor([[0.25, 0.75]]), group_size=1)
        >>> prediction_rows(r, torch.tensor([[1.0, 0.0]]), ["help", "harm"])
        [{'prompt': 'hi', 'w': {'help': 0.25, 'harm': 0.75}, 'completion': 'a', 'rewards': {'help': 1.0, 'harm': 0.0}}]
    """  # noqa: E501
    return [
        {"prompt": p, "w": dict(zip(names, [round(x, 6) for x in w], strict=True)), "completion": c,
         "rewards": dict(zip(names, r, strict=True))}
        for p, w, c, r in zip(rollout.prompts, rollout.weights.tolist(), rollout.completions, raw.tolist(),
                              strict=True)
    ]  # fmt: skip


def train_logs(
    loss: Tensor, scored: ScoredRollout, names: Sequence[str], stats: dict[str, Tensor]
) -> dict[str, Tensor | float]:
    """The ``train/*`` values of one step: loss, mean utility, completion length, mean rewards per objective
    (raw and normalized), the loss's stats."""
    rollout, raw, normalized, utilities = scored.rollout, scored.raw, scored.normalized, scored.utilities
    logs: dict[str, Tensor | float] = {
        "train/loss": loss.detach(),
        "train/utility": utilities.mean(),
        "train/completion_length": rollout.completion_mask.sum(-1).float().mean(),
    }
    for k, name in enumerate(names):
        logs[f"train/reward_raw/{name}"] = raw[:, k].mean()
        logs[f"train/reward/{name}"] = normalized[:, k].mean()
    logs.update({f"train/{k}": v for k, v in stats.items()})
    return logs


def writes_logs(trainer: Any, global_step: int) -> bool:
    """Whether this optimizer step's ``train/*`` values reach the logger (every ``log_every_n_steps``-th step).

    Lightning writes step-level values only on those steps; computing and passing them on the others cost
    several milliseconds per step (about a tenth of a small model's step) for values nobody reads. So the
    ``train/*`` entries of the trainer's callback metrics refresh on those steps and on the last one.
    """
    if trainer is None:
        return True
    step = global_step + 1
    last = trainer.max_steps is not None and 0 < trainer.max_steps <= step
    return step % max(1, trainer.log_every_n_steps) == 0 or last or trainer.should_stop


__all__ = ["prediction_rows", "sample_table", "train_logs", "writes_logs"]
