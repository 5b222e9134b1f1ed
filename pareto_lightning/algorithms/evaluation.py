"""The evaluation sweep's and the prediction's steps of an algorithm module."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from pareto_lightning.algorithms.reporting import prediction_rows
from pareto_lightning.losses.groups import grouped
from pareto_lightning.policy import PreferencePolicy, Rollout
from pareto_lightning.rollout import SweepBatch


class SweepSteps:
    """Mixin of :class:`~pareto_lightning.algorithms.base.PreferenceAlignmentModule`: validation, test and predict
    steps, on the module's ``rollout`` (generate, then score)."""

    policy: PreferencePolicy
    eval_seed: int
    eval_num_generations: int
    device: torch.device
    global_rank: int

    def rollout(
        self,
        batch: dict[str, Any],
        num_generations: int,
        do_sample: bool = True,
        keep_nonfinite: bool = False,
    ) -> tuple[Rollout, Tensor, Tensor]:
        raise NotImplementedError

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> SweepBatch:
        """Greedy and sampled completions for one batch of the evaluation sweep, with their raw rewards.

        Sampling is seeded by the batch index (on a forked RNG, so training randomness is untouched): two
        evaluations of the same weights and model give identical results. Rewards are raw (a normalizer's
        statistics move during training); ``ParetoEvaluation`` aggregates them on its fixed yardstick.
        """
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.eval_seed + 7919 * batch_idx + self.global_rank)
            greedy_rollout, greedy, _ = self.rollout(batch, 1, do_sample=False)  # [b, K]
            _, sampled, _ = self.rollout(batch, self.eval_num_generations, do_sample=True)  # [b*G, K]
        return SweepBatch(
            weight_index=batch["weight_index"],
            weights=batch["weights"],
            greedy=greedy,
            sampled=grouped(sampled, self.eval_num_generations),  # [b, G, K]
            prompts=list(batch["prompts"]),
            completions=greedy_rollout.completions,
        )

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> SweepBatch:
        return self.validation_step(batch, batch_idx)

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> list[dict[str, Any]]:
        """Greedy completions for each (prompt, ``w``) pair: the paper's Table 2 view."""
        rollout, raw, _ = self.rollout(batch, 1, do_sample=False)
        return prediction_rows(rollout, raw, self.policy.objective_names)


__all__ = ["SweepSteps"]
