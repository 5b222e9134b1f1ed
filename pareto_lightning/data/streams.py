"""The data module's helpers: the evaluation weights, training placeholders and this rank's share of the sweep."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import IterableDataset

from pareto_lightning.preferences import PAPER_EVAL_WEIGHTS, simplex_grid, validate_preference

TRAIN_TICK = "__train_step__"


def resolve_eval_weights(
    eval_weights: str | list[list[float]], num_objectives: int, divisions: int
) -> Tensor:
    """``data.init_args.eval_weights`` as a ``[M, K]`` tensor: ``"paper_table1"``, ``"lattice"`` or a list.

    Example:
        >>> resolve_eval_weights("lattice", 2, 2).tolist()
        [[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]]
    """
    if isinstance(eval_weights, str):
        if eval_weights == "paper_table1":
            if num_objectives != 2:
                raise ValueError(
                    "`data.init_args.eval_weights: paper_table1` is the 2-objective sweep of Table 1; with "
                    f"num_objectives={num_objectives} use 'lattice' or a list."
                )
            return PAPER_EVAL_WEIGHTS.clone()
        if eval_weights == "lattice":
            return simplex_grid(num_objectives, divisions, key="data.init_args.eval_lattice_divisions")
        raise ValueError(
            f"`data.init_args.eval_weights` must be 'paper_table1', 'lattice' or a list; got {eval_weights!r}."
        )
    w = validate_preference(torch.as_tensor(eval_weights, dtype=torch.float64), num_objectives,
                            key="data.init_args.eval_weights")  # fmt: skip
    if w.dim() != 2 or len(w) == 0:
        raise ValueError("`data.init_args.eval_weights` must be a non-empty list of weight vectors.")
    return w


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


__all__ = ["TRAIN_TICK", "EvalShard", "Ticks", "eval_batch_sizes", "resolve_eval_weights"]
