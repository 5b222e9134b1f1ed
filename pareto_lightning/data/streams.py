"""The iterable datasets behind the data module: training placeholders and this rank's share of the sweep."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import IterableDataset

TRAIN_TICK = "__train_step__"


class Ticks(IterableDataset):
    """An endless stream of placeholders; the real batch is filled in when it is consumed."""

    def __iter__(self) -> Iterator[dict[str, bool]]:
        while True:
            yield {TRAIN_TICK: True}


def eval_batch_sizes(num_items: int, batch_size: int, num_batches: int) -> list[int]:
    """Sizes of one rank's evaluation batches: ``batch_size`` each, with the largest split until there are
    ``num_batches`` (every rank must run as many evaluation steps: a sharded policy gathers in each of them).

    Example:
        >>> eval_batch_sizes(7, 3, 3), eval_batch_sizes(6, 3, 3), eval_batch_sizes(6, 3, 4)
        ([3, 3, 1], [2, 1, 3], [2, 1, 2, 1])
    """
    sizes = [batch_size] * (num_items // batch_size) + (
        [num_items % batch_size] if num_items % batch_size else []
    )
    while len(sizes) < num_batches:
        i = max(range(len(sizes)), key=sizes.__getitem__)
        sizes[i : i + 1] = [sizes[i] - sizes[i] // 2, sizes[i] // 2]
    return sizes


class EvalShard(IterableDataset):
    """This rank's share of the (evaluation weight x evaluation prompt) sweep, in batches."""

    def __init__(
        self, items: list[tuple[int, int]], prompts: list[str], weights: Tensor, batch_sizes: list[int]
    ) -> None:
        self.items, self.prompts, self.weights, self.batch_sizes = items, prompts, weights, batch_sizes

    def __iter__(self) -> Iterator[dict[str, Any]]:
        start = 0
        for size in self.batch_sizes:
            chunk = self.items[start : start + size]
            start += size
            yield {
                "prompts": [self.prompts[p] for _, p in chunk],
                "weights": self.weights[[w for w, _ in chunk]],  # [b, K]
                "weight_index": torch.tensor([w for w, _ in chunk]),  # [b]
                "prompt_index": torch.tensor([p for _, p in chunk]),  # [b]
            }


__all__ = ["TRAIN_TICK", "EvalShard", "Ticks", "eval_batch_sizes"]
