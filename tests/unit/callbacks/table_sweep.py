"""A stand-in algorithm module for evaluation tests: its sweep returns rewards from a known table, not a model.

Four prompts over seven weights (four seen on the 0.1 grid, three unseen), built so that each prompt's own Spearman
correlation is worked out by hand (``EXPECTED``):

- prompt 0: ``r = w`` (+1 for both objectives on every split);
- prompt 1: ``r = 1 - w`` (-1);
- prompt 2: ``r = (0.5, 0.5)`` at every weight (constant: undefined, counted as 0);
- prompt 3: ``r = w`` on the seen weights and ``1 - w`` on the unseen ones (+1 seen, -1 unseen). Over all seven,
  ``w_1`` ranks 7, 6, 5, 4, 3, 2, 1 and ``r_1 = (1, .8, .45, .55, .3, .85, 0)`` ranks 7, 5, 3, 4, 2, 6, 1:
  ``sum d^2 = 22``, ``rho = 1 - 6 * 22 / (7 * 48) = 17 / 28``; the same for objective 2 (both rankings reversed).

Per split, the four prompts' correlations are then (all) ``1, -1, 0, 17/28``, (seen) ``1, -1, 0, 1``, (unseen)
``1, -1, 0, -1``: share above 0.5 and median ``2/4, 17/56``; ``2/4, 1/2``; ``1/4, -1/2``. Averaged over the
prompts, ``r_1 = (1.5 + r_1 of prompt 3) / 4`` per weight, so the per-weight Spearman is that of prompt 3.
"""

from __future__ import annotations

from types import SimpleNamespace

import lightning.pytorch as pl
import torch
from torch import nn

from pareto_lightning.rollout import SweepBatch

PROMPTS = ["p0", "p1", "p2", "p3"]
WEIGHTS = [[1.0, 0.0], [0.8, 0.2], [0.55, 0.45], [0.45, 0.55], [0.3, 0.7], [0.15, 0.85], [0.0, 1.0]]
SEEN = [True, True, False, False, True, False, True]
NAMES = ["simplicity", "technicality"]
EXPECTED = {  # the logged name -> its value, for both objectives
    "prompt_steer_frac": 0.5, "prompt_steer_median": 17 / 56, "spearman": 17 / 28,
    "prompt_steer_frac_seen": 0.5, "prompt_steer_median_seen": 0.5, "spearman_seen": 1.0,
    "prompt_steer_frac_unseen": 0.25, "prompt_steer_median_unseen": -0.5, "spearman_unseen": -1.0,
}  # fmt: skip


def table() -> torch.Tensor:
    """``[P=4, M=7, K=2]`` the reward of each (prompt, weight) pair."""
    w = torch.tensor(WEIGHTS, dtype=torch.float64)  # [7, 2]
    seen = torch.tensor(SEEN)[:, None]  # [7, 1]
    return torch.stack([w, 1 - w, torch.full_like(w, 0.5), torch.where(seen, w, 1 - w)])


class TableSweep(pl.LightningModule):
    """Answers each evaluation batch with the table's rewards (greedy, and ``G = 2`` identical samples)."""

    def __init__(self) -> None:
        super().__init__()
        self.table = table()
        self.policy = SimpleNamespace(objective_names=NAMES)
        self.layer = nn.Linear(2, 2)  # something for a strategy to wrap or shard

    def configure_model(self) -> None:
        if getattr(self, "device_mesh", None) is not None:  # FSDP2 (ModelParallelStrategy)
            from torch.distributed.fsdp import fully_shard

            fully_shard(self.layer, mesh=self.device_mesh["data_parallel"])

    def validation_step(self, batch, batch_idx) -> SweepBatch:
        rewards = self.table[batch["prompt_index"].cpu(), batch["weight_index"].cpu()].float()  # [b, K]
        return SweepBatch(weight_index=batch["weight_index"], weights=batch["weights"], greedy=rewards,
                          sampled=rewards[:, None].repeat(1, 2, 1), prompts=list(batch["prompts"]),
                          completions=[""] * len(rewards))  # fmt: skip
