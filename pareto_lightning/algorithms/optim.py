"""The default optimizer and learning-rate schedule: AdamW, then a linear warmup and a cosine decay to a floor.

An algorithm module uses them unless ``model.init_args.optimizer`` / ``model.init_args.lr_scheduler`` inject others
(LightningCLI's ``OptimizerCallable`` / ``LRSchedulerCallable``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

LEARNING_RATE, WEIGHT_DECAY = 1e-6, 0.0
"""The default AdamW's defaults (the paper's learning rate for Qwen2-0.5B)."""


def schedule_problems(learning_rate: float, warmup_steps: int, min_lr_ratio: float) -> list[str]:
    """What is wrong with the default optimizer's and schedule's settings, one line per problem.

    Example:
        >>> schedule_problems(0.0, 10, 1.5)
        ['`learning_rate` must be > 0; got 0.0', '`min_lr_ratio` must be in [0, 1]; got 1.5']
    """
    problems = []
    if not learning_rate > 0:
        problems.append(f"`learning_rate` must be > 0; got {learning_rate}")
    if warmup_steps < 0:
        problems.append(f"`warmup_steps` must be >= 0; got {warmup_steps}")
    if not 0 <= min_lr_ratio <= 1:
        problems.append(f"`min_lr_ratio` must be in [0, 1]; got {min_lr_ratio}")
    return problems


def warmup_cosine(step: int, warmup_steps: int, total_steps: int | None, min_lr_ratio: float) -> float:
    """The learning-rate factor at ``step``: linear warmup to 1, then a cosine decay to ``min_lr_ratio``.

    During warmup the factor is ``(step + 1) / (warmup_steps + 1)``; after it, the cosine reaches
    ``min_lr_ratio`` at ``total_steps`` and stays there. Without a known ``total_steps`` (or one within the
    warmup) the factor stays 1 after the warmup.

    Example:
        >>> [round(warmup_cosine(s, 1, 5, 0.5), 4) for s in range(7)]
        [0.5, 1.0, 0.9268, 0.75, 0.5732, 0.5, 0.5]
        >>> warmup_cosine(100, 0, None, 0.0)
        1.0
    """
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    if total_steps is None or total_steps <= warmup_steps:
        return 1.0
    progress = min(1.0, (step - warmup_steps) / (total_steps - warmup_steps))
    return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def default_optimizer(params: Iterable[nn.Parameter], lr: float, wd: float) -> torch.optim.Optimizer:
    """AdamW with learning rate ``lr`` and weight decay ``wd``, torch's defaults otherwise."""
    return torch.optim.AdamW(params, lr=lr, weight_decay=wd)


def warmup_cosine_scheduler(
    optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int | None, min_lr_ratio: float
) -> torch.optim.lr_scheduler.LambdaLR:
    """The optimizer's learning rates times :func:`warmup_cosine`, stepped once per optimizer step."""

    def factor(step: int) -> float:  # a function, not an object: LambdaLR keeps it out of its state dict
        return warmup_cosine(step, warmup_steps, total_steps, min_lr_ratio)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


__all__ = [
    "LEARNING_RATE",
    "WEIGHT_DECAY",
    "default_optimizer",
    "schedule_problems",
    "warmup_cosine",
    "warmup_cosine_scheduler",
]
