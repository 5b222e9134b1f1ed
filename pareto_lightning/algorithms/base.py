"""Shared orchestration of the preference-conditioned algorithms: rollout, scoring, logging, optimizer.

Subclasses implement only ``compute_loss`` (the algorithm); the maths lives in :mod:`pareto_lightning.losses`.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Literal

import lightning.pytorch as pl
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from lightning.pytorch.utilities.rank_zero import rank_zero_warn
from torch import Tensor, nn

from pareto_lightning.algorithms import optim
from pareto_lightning.algorithms.evaluation import SweepSteps
from pareto_lightning.algorithms.fit_checks import check_data_fits
from pareto_lightning.algorithms.guard import GradientGuard, GradNaNPolicy, guard_optimizer_step
from pareto_lightning.algorithms.nan_policy import drop_nonfinite_groups
from pareto_lightning.algorithms.reference import ReferenceModel
from pareto_lightning.algorithms.reporting import sample_table, train_logs, writes_logs
from pareto_lightning.algorithms.resume import ResumableRun
from pareto_lightning.algorithms.reuse import FirstIteration, RolloutReuse, ScoredRollout
from pareto_lightning.checkpointing import leave_frozen_out_of_checkpoints, leave_out_of_checkpoints
from pareto_lightning.config_errors import configuration_error, quote_keys
from pareto_lightning.data.contract import preference_data
from pareto_lightning.finite import use_safe_attention_kernels
from pareto_lightning.losses.groups import group_size_problem
from pareto_lightning.losses.modules import AlignmentLoss
from pareto_lightning.policy import PreferencePolicy, Rollout
from pareto_lightning.rewards import MultiObjectiveReward
from pareto_lightning.scalarization import Scalarizer

_FROZEN_REWARD_PREFIX = "reward.reward_modules."


class PreferenceAlignmentModule(SweepSteps, ReferenceModel, ResumableRun, pl.LightningModule):
    """Base LightningModule: one training step is rollout -> rewards -> utilities -> ``compute_loss``.

    The evaluation and prediction steps come from :class:`~pareto_lightning.algorithms.evaluation.SweepSteps`, the
    frozen reference and FSDP2 sharding from :class:`~pareto_lightning.algorithms.reference.ReferenceModel`, the
    checkpoint hooks from :class:`~pareto_lightning.algorithms.resume.ResumableRun`.

    Args:
        policy: the preference-conditioned policy.
        reward: ``K`` reward functions (+ optional normalizer); ``K`` must equal the policy's objectives.
        scalarizer: how a reward vector and ``w`` become one utility (linear, smooth Tchebycheff, ...).
        loss: the loss (``GRPOLoss``, ``DPOLoss``); the module keeps a frozen reference when it needs one.
        num_generations: completions per prompt ``G``.
        learning_rate: the default AdamW's peak learning rate (the paper: 1e-6 for Qwen2-0.5B).
        weight_decay: the default AdamW's weight decay.
        warmup_steps: the default schedule's linear warmup from 0 to the peak.
        min_lr_ratio: the default schedule's cosine decays to ``min_lr_ratio`` times the peak at
            ``trainer.max_steps`` (see :func:`~pareto_lightning.algorithms.optim.warmup_cosine`).
        optimizer: another optimizer (``OptimizerCallable``; YAML: ``class_path: torch.optim.SGD`` with its
            ``init_args``, its own ``lr`` included), given the trainable parameters; None: AdamW with
            ``learning_rate`` and ``weight_decay``.
        lr_scheduler: another schedule (``LRSchedulerCallable``), stepped once per optimizer step; None: the
            warmup and cosine decay above, on the optimizer's own learning rate.
        sample_log_every_n_steps: write sample completions with their ``w`` to TensorBoard this often (0: never).
        eval_num_generations: sampled completions per (prompt, w) in the evaluation sweep.
        eval_seed: seed of the evaluation sampling (evaluations are reproducible).
        nan_policy: what a training step does with a NaN/inf reward. ``"raise"`` (default) stops the run,
            naming the objective (the failed-run checkpoint keeps the work). ``"skip_group"`` drops every group
            with a non-finite reward from the step (the normalizer never sees them), logs the count as
            ``train/skipped_groups``, and still fails when a step (on any rank) keeps no group. The evaluation
            sweep always raises.
        train_seed: seed of the training rollouts' sampling; each step samples from its own seed, derived from
            this one, the step and the rank, so a resumed run (from any checkpoint, including one written when a
            run failed mid-step) samples exactly what an uninterrupted run would. None takes the global seed
            (``seed_everything``) when fitting starts; it is kept in the checkpoint.
        grad_nan_policy: what an optimizer step does with a NaN/inf gradient (checked on every rank before every
            step; see :class:`~pareto_lightning.algorithms.guard.GradientGuard`). ``"raise"`` (default) stops the
            run at that step, naming the parameters; the crash checkpoint holds the last finite weights.
            ``"skip_step"`` leaves the weights and the optimizer's moments as they are and counts the step in
            ``train/skipped_steps``. With ``precision: 16-mixed`` the gradient scaler handles infinities instead.
        max_skipped_steps: ``"skip_step"`` fails the run once more steps than this were skipped.
    """

    num_iterations: int = 1  # optimizer steps each rollout serves (GRPOModule reuses rollouts)

    def __init__(
        self,
        policy: PreferencePolicy,
        reward: MultiObjectiveReward,
        scalarizer: Scalarizer,
        loss: AlignmentLoss,
        num_generations: int = 8,
        learning_rate: float = optim.LEARNING_RATE,
        weight_decay: float = optim.WEIGHT_DECAY,
        warmup_steps: int = 0,
        min_lr_ratio: float = 0.0,
        optimizer: OptimizerCallable | None = None,
        lr_scheduler: LRSchedulerCallable | None = None,
        sample_log_every_n_steps: int = 50,
        eval_num_generations: int = 1,
        eval_seed: int = 1234,
        nan_policy: Literal["raise", "skip_group"] = "raise",
        train_seed: int | None = None,
        grad_nan_policy: GradNaNPolicy = "raise",
        max_skipped_steps: int = 10,
    ) -> None:
        super().__init__()
        group_problem = group_size_problem(num_generations)
        problems = [f"`num_generations` {group_problem}"] if group_problem else []
        problems += optim.schedule_problems(learning_rate, warmup_steps, min_lr_ratio)
        if eval_num_generations < 1:
            problems.append(f"`eval_num_generations` must be >= 1; got {eval_num_generations}")
        if nan_policy not in ("raise", "skip_group"):
            problems.append(f"`nan_policy` must be 'raise' or 'skip_group'; got {nan_policy!r}")
        if problems:
            raise configuration_error(type(self).__name__, quote_keys(problems, "model.init_args"))
        own_adamw = (learning_rate, weight_decay) != (optim.LEARNING_RATE, optim.WEIGHT_DECAY)
        if optimizer is not None and own_adamw:
            rank_zero_warn(
                "`model.init_args.learning_rate` and `model.init_args.weight_decay` set the default AdamW; "
                "`model.init_args.optimizer` takes its own (its `lr`), so they are not used."
            )
        reward.match_objectives(
            policy.objective_names, key="model.init_args.policy.init_args.objective_names"
        )
        scalarizer.check_num_objectives(policy.num_objectives)
        self.policy, self.reward, self.scalarizer, self.loss = policy, reward, scalarizer, loss
        self.num_generations = num_generations
        self.learning_rate, self.weight_decay = learning_rate, weight_decay
        self.warmup_steps, self.min_lr_ratio = warmup_steps, min_lr_ratio
        self.make_optimizer, self.make_lr_scheduler = optimizer, lr_scheduler
        self.sample_log_every_n_steps = sample_log_every_n_steps
        self.eval_num_generations, self.eval_seed = eval_num_generations, eval_seed
        self.train_seed, self.nan_policy = train_seed, nan_policy
        self.grad_guard = GradientGuard(grad_nan_policy, max_skipped_steps)
        self.rollout_reuse = RolloutReuse(self.num_iterations)
        self.checkpoint_step: int | None = None  # the global_step of the checkpoint loaded, if any
        # Rewards are frozen and never seen by the optimizer. The reward models are rebuilt from their own names
        # whenever the module is built, so checkpoints leave them out (the normalizer's statistics are kept; the
        # frozen reference lives outside the state dict for the same reason).
        self.reward.requires_grad_(False)
        leave_out_of_checkpoints(self, _FROZEN_REWARD_PREFIX)
        # The frozen reference (see ReferenceModel) and LoRA's frozen base weights are rebuilt from the policy's own
        # source whenever the module is built, so checkpoints leave them out.
        self.reference_model: nn.Module | None = None
        leave_out_of_checkpoints(self, "reference_model.")
        if policy.uses_lora:
            leave_frozen_out_of_checkpoints(self, "policy.model", policy.model)

    @property
    def beta(self) -> float:
        """The loss's KL (GRPO) or DPO coefficient."""
        return self.loss.beta

    @property
    def num_objectives(self) -> int:
        return self.policy.num_objectives

    def setup(self, stage: str) -> None:
        if self.train_seed is None:
            self.train_seed = torch.initial_seed() % 2**31
        trainer = self._trainer
        if trainer is not None:  # the cuDNN attention backward can turn padded batches' gradients into NaN
            use_safe_attention_kernels(trainer.strategy.root_device, self.policy.cudnn_attention)
        self.make_reference(stage)
        self.policy.check_context()  # max_prompt_length + max_new_tokens fit in the model
        data = preference_data(self._trainer)  # refuses a data module without the contract
        if data is not None:  # used without a data module: nothing to check ahead
            check_data_fits(self.policy, data, stage)

    def rollout(
        self,
        batch: dict[str, Any],
        num_generations: int,
        do_sample: bool = True,
        keep_nonfinite: bool = False,
    ) -> tuple[Rollout, Tensor, Tensor]:
        """Generate, score and normalize: returns the rollout, raw rewards ``[N, K]`` and normalized ``[N, K]``."""
        # The policy validates the preferences where they enter it (generate).
        rollout = self.policy.generate(
            list(batch["prompts"]), batch["weights"], num_generations, do_sample=do_sample
        )
        raw, normalized = self.reward(rollout.prompts, rollout.completions, keep_nonfinite)  # [N, K] each
        return rollout, raw.to(self.device), normalized.to(self.device)

    def _micro_batch(self, batch_idx: int) -> int:
        accumulate = self._trainer.accumulate_grad_batches if self._trainer is not None else 1
        return batch_idx % max(1, accumulate)  # which micro-batch of the optimizer step this is

    def _step_seed(self, batch_idx: int) -> int:
        # One seed per (step, micro-batch, rank): sampling never depends on what consumed the global RNG before.
        step, micro = self.global_step, self._micro_batch(batch_idx)
        return (int(self.train_seed or 0) + 1_000_003 * step + 7919 * micro + self.global_rank) % 2**63

    def _scored_rollout(self, batch: dict[str, Any], batch_idx: int) -> ScoredRollout:
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self._step_seed(batch_idx))
            skip = self.nan_policy == "skip_group"
            rollout, raw, normalized = self.rollout(batch, self.num_generations, keep_nonfinite=skip)
        rollout, raw, normalized, skipped = drop_nonfinite_groups(rollout, raw, normalized, self.global_step)
        utilities = self.scalarizer(normalized, rollout.weights.to(normalized))  # [N]
        return ScoredRollout(rollout, raw, normalized, utilities, skipped)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Tensor]:
        """One update, on a new rollout or (``num_iterations > 1``) on the one made ``t % num_iterations``
        steps ago; returns ``{"loss", "utility"}`` (the mean utility, read by ``MetaLoop``)."""
        micro = self._micro_batch(batch_idx)
        scored = self.rollout_reuse.get(self.global_step, micro)
        if scored is None:
            scored = self._scored_rollout(batch, batch_idx)
            self.rollout_reuse.put(micro, scored)
        utilities = scored.utilities  # [N]
        loss, stats, scored.first = self.compute_loss(scored.rollout, utilities, scored.first, scored.normalized)
        if writes_logs(self._trainer, self.global_step):  # the logger keeps one step in log_every_n_steps
            logs = train_logs(loss, scored, self.policy.objective_names, stats)
            if self.nan_policy == "skip_group":
                logs["train/skipped_groups"] = float(scored.skipped)
            self.log_dict(logs, prog_bar=False, batch_size=len(batch["prompts"]))
        self.log("utility", utilities.mean(), prog_bar=True, logger=False, batch_size=len(batch["prompts"]))
        self._maybe_log_samples(scored.rollout, scored.raw)
        return {"loss": loss, "utility": utilities.mean().detach()}

    def compute_loss(
        self, rollout: Rollout, utilities: Tensor, first: FirstIteration | None, rewards: Tensor
    ) -> tuple[Tensor, dict[str, Tensor], FirstIteration | None]:
        """The loss of one step on ``rollout`` with its ``[N]`` utilities (scalarized from the ``[N, K]``
        normalized ``rewards``), the stats to log, and what a later step on the same rollout needs (``first``:
        what this returned at the rollout's first step, else None)."""
        raise NotImplementedError

    def _maybe_log_samples(self, rollout: Rollout, raw: Tensor) -> None:
        every = self.sample_log_every_n_steps
        experiment = getattr(self.logger, "experiment", None)
        if not every or self.global_step % every or not hasattr(experiment, "add_text"):
            return
        table = sample_table(rollout, raw, self.policy.objective_names)
        experiment.add_text("train/samples", table, self.global_step)

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """No non-finite gradient reaches the weights (``grad_nan_policy``)."""
        guard_optimizer_step(self, self.grad_guard, self.policy.named_parameters())

    def configure_optimizers(self) -> dict[str, Any]:
        """The injected optimizer and schedule, or AdamW with a warmup and cosine decay, stepped per step."""
        params = [p for p in self.policy.parameters() if p.requires_grad]
        make = self.make_optimizer or partial(
            optim.default_optimizer, lr=self.learning_rate, wd=self.weight_decay
        )
        optimizer = make(params)
        total = self.trainer.max_steps if self.trainer.max_steps and self.trainer.max_steps > 0 else None
        schedule = self.make_lr_scheduler or partial(
            optim.warmup_cosine_scheduler, warmup_steps=self.warmup_steps, total_steps=total,
            min_lr_ratio=self.min_lr_ratio,
        )  # fmt: skip
        scheduler = schedule(optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

__all__ = [
    "PreferenceAlignmentModule",
]
