"""Shared orchestration of the preference-conditioned algorithms: rollout, scoring, logging, optimizer.

Subclasses implement only ``compute_loss`` (the algorithm); the maths lives in :mod:`pareto_lightning.losses`.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Literal

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities.rank_zero import rank_zero_warn
from torch import Tensor, nn

from pareto_lightning.algorithms.guard import GradientGuard, GradNaNPolicy
from pareto_lightning.algorithms.reuse import RolloutReuse, ScoredRollout
from pareto_lightning.checkpointing import RUN_SIGNATURE_KEY, leave_out_of_checkpoints, resume_problems
from pareto_lightning.conditioning import weight_decimals_problem
from pareto_lightning.data.contract import preference_data
from pareto_lightning.finite import use_safe_attention_kernels
from pareto_lightning.policy import PreferencePolicy, Rollout
from pareto_lightning.rewards import MultiObjectiveReward
from pareto_lightning.rewards.functional import finite_groups
from pareto_lightning.rollout import SweepBatch
from pareto_lightning.scalarization import Scalarizer
from pareto_lightning.sharding import is_fsdp, mixed_precision_policy, shard_causal_lm

_FROZEN_REWARD_PREFIX = "reward.reward_modules."


class PreferenceAlignmentModule(pl.LightningModule):
    """Base LightningModule: one training step is rollout -> rewards -> utilities -> ``compute_loss``.

    Args:
        policy: the preference-conditioned policy.
        reward: ``K`` reward functions (+ optional normalizer); ``K`` must equal the policy's objectives.
        scalarizer: how a reward vector and ``w`` become one utility (linear, smooth Tchebycheff, ...).
        num_generations: completions per prompt ``G``.
        beta: KL (GRPO) or DPO temperature coefficient; ``beta == 0`` skips the reference model in GRPO.
        learning_rate: AdamW peak learning rate (the paper: 1e-6 for Qwen2-0.5B).
        weight_decay: AdamW weight decay.
        warmup_steps: linear warmup from 0 to the peak.
        min_lr_ratio: the cosine schedule decays to ``learning_rate * min_lr_ratio`` at ``trainer.max_steps``.
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

    uses_reference: bool = True

    def __init__(
        self,
        policy: PreferencePolicy,
        reward: MultiObjectiveReward,
        scalarizer: Scalarizer,
        num_generations: int = 8,
        beta: float = 0.1,
        learning_rate: float = 1e-6,
        weight_decay: float = 0.0,
        warmup_steps: int = 0,
        min_lr_ratio: float = 0.0,
        sample_log_every_n_steps: int = 50,
        eval_num_generations: int = 1,
        eval_seed: int = 1234,
        nan_policy: Literal["raise", "skip_group"] = "raise",
        train_seed: int | None = None,
        grad_nan_policy: GradNaNPolicy = "raise",
        max_skipped_steps: int = 10,
    ) -> None:
        super().__init__()
        problems = []
        if num_generations < 2:
            problems.append(
                f"`model.init_args.num_generations` must be >= 2 (a group needs a spread); got {num_generations}."
            )
        if beta < 0:
            problems.append(f"`model.init_args.beta` must be >= 0; got {beta}.")
        if not learning_rate > 0:
            problems.append(f"`model.init_args.learning_rate` must be > 0; got {learning_rate}.")
        if warmup_steps < 0:
            problems.append(f"`model.init_args.warmup_steps` must be >= 0; got {warmup_steps}.")
        if not 0 <= min_lr_ratio <= 1:
            problems.append(f"`model.init_args.min_lr_ratio` must be in [0, 1]; got {min_lr_ratio}.")
        if eval_num_generations < 1:
            problems.append(
                f"`model.init_args.eval_num_generations` must be >= 1; got {eval_num_generations}."
            )
        if nan_policy not in ("raise", "skip_group"):
            problems.append(
                f"`model.init_args.nan_policy` must be 'raise' or 'skip_group'; got {nan_policy!r}."
            )
        if problems:
            raise ValueError(f"invalid {type(self).__name__} configuration:\n  " + "\n  ".join(problems))
        reward.match_objectives(
            policy.objective_names, key="model.init_args.policy.init_args.objective_names"
        )
        scalarizer.check_num_objectives(policy.num_objectives)
        self.policy, self.reward, self.scalarizer = policy, reward, scalarizer
        self.num_generations, self.beta = num_generations, beta
        self.learning_rate, self.weight_decay = learning_rate, weight_decay
        self.warmup_steps, self.min_lr_ratio = warmup_steps, min_lr_ratio
        self.sample_log_every_n_steps = sample_log_every_n_steps
        self.eval_num_generations, self.eval_seed = eval_num_generations, eval_seed
        self.train_seed, self.nan_policy = train_seed, nan_policy
        self.grad_guard = GradientGuard(grad_nan_policy, max_skipped_steps)
        self.rollout_reuse = RolloutReuse(1)  # one update per rollout unless a subclass reuses them
        self.loss_state: dict[str, Tensor | None] = {}
        self.checkpoint_step: int | None = None  # the global_step of the checkpoint loaded, if any
        # Rewards are frozen and never seen by the optimizer. The reward models are rebuilt from their own names
        # whenever the module is built, so checkpoints leave them out (the normalizer's statistics are kept; the
        # frozen reference lives outside the state dict for the same reason).
        self.reward.requires_grad_(False)
        leave_out_of_checkpoints(self, _FROZEN_REWARD_PREFIX)
        # The frozen reference of the KL term, owned here since beta is decided here: a copy of the policy's
        # starting weights made when fitting starts (beta > 0, no LoRA), or None. Rebuilt from the policy's own
        # source whenever the module is built, so checkpoints leave it out.
        self.reference_model: nn.Module | None = None
        leave_out_of_checkpoints(self, "reference_model.")
        # Under a LoRA adapter the base weights are frozen and rebuilt from
        # `model.init_args.policy.init_args.model` whenever the module is built, so checkpoints hold the adapter
        # (a few MB) rather than the whole model.
        if policy.uses_lora:
            entries = policy.model.state_dict(keep_vars=True).items()  # tied weights under each name
            frozen = [f"policy.model.{n}" for n, t in entries if not t.requires_grad]
            leave_out_of_checkpoints(self, keys=frozen)

    @property
    def num_objectives(self) -> int:
        return self.policy.num_objectives

    # ---------------------------------------------------------------------------------------------- lifecycle
    def setup(self, stage: str) -> None:
        if self.train_seed is None:
            self.train_seed = torch.initial_seed() % 2**31
        trainer = self._trainer
        if trainer is not None:  # the cuDNN attention backward can turn padded batches' gradients into NaN
            use_safe_attention_kernels(trainer.strategy.root_device, self.policy.cudnn_attention)
        needs_copy = self.beta > 0 and self.uses_reference and not self.policy.uses_lora
        if stage == "fit" and needs_copy and self.reference_model is None:
            self.reference_model = copy.deepcopy(self.policy.model).eval().requires_grad_(False)
        self.policy.check_context()  # max_prompt_length + max_new_tokens fit in the model
        # Every evaluation weight, and every training weight of a grid, is written exactly (`weight_decimals`).
        # Every evaluation prompt under every evaluation weight fits, and every training prompt under every
        # training weight of a grid, checked now rather than when it is first drawn, hours into training (the data
        # module is set up before the module). On the continuous simplex the training prompts are checked under
        # the evaluation weights now, and each again when drawn.
        data = preference_data(self._trainer)  # refuses a data module without the contract
        if data is None:  # used without a data module: nothing to check ahead
            return
        prompts, weights = data.eval_prompts, data.eval_weights
        train, support = data.train_prompts, data.train_support
        decimals = self.policy.weight_decimals
        problems = [
            weight_decimals_problem(w, decimals, key)
            for w, key in (
                (weights, "data.init_args.eval_weights"),
                (support, "data.init_args.grid_divisions"),
            )
            if w is not None and (stage == "fit" or w is weights)
        ]
        if any(problems):
            raise ValueError(
                "the policy would write preferences rounded, so the model would be told another preference than "
                "it is scored under:\n  " + "\n  ".join(p for p in problems if p)
            )
        if prompts and weights is not None:
            self.policy.check_prompt_lengths(prompts, weights, key="data.init_args.eval_prompts")
        written = support if support is not None else weights
        if stage == "fit" and train and written is not None:
            unique = list(dict.fromkeys(train))
            self.policy.check_prompt_lengths(unique, written, key="data.init_args.train_prompts")

    def configure_model(self) -> None:
        """Under ``ModelParallelStrategy`` (FSDP2): shard the policy (and the frozen reference) per decoder layer.

        Reward models are not sharded: they are small next to the policy, frozen, and never seen by the optimizer;
        each rank holds a full copy on its own device. With ``precision="bf16-mixed"`` FSDP2 computes in bf16 on
        float32 master shards (:func:`~pareto_lightning.sharding.mixed_precision_policy`). The strategy's
        distributed checkpoint holds the sharded policy, optimizer and normalizer state, not the reward models.
        Other strategies (single device, ``ddp``) leave the modules as they are.
        """
        mesh = getattr(self, "device_mesh", None)
        if mesh is None or is_fsdp(self.policy.model):
            return
        dp_mesh = mesh["data_parallel"] if "data_parallel" in (mesh.mesh_dim_names or ()) else mesh
        # "bf16-mixed": FSDP2 gathers bf16 copies of the float32 shards (see `mixed_precision_policy`).
        mp = mixed_precision_policy(self._trainer.precision if self._trainer is not None else None)
        shard_causal_lm(self.policy.model, dp_mesh, mixed_precision=mp)
        if self.reference_model is not None:
            shard_causal_lm(self.reference_model, dp_mesh, mixed_precision=mp)

    # -------------------------------------------------------------------------------------------- checkpoints
    def run_signature(self) -> dict[str, Any]:
        """What a run resuming this module's checkpoint must share: the method, its scalarizer, the
        meta-learning settings and the objectives (see :func:`~pareto_lightning.checkpointing.resume_problems`)."""
        from pareto_lightning.callbacks.meta_loop import MetaLoop

        trainer = self._trainer
        loops = [
            c.settings for c in (trainer.callbacks if trainer is not None else []) if isinstance(c, MetaLoop)
        ]
        return {
            "module": type(self).__name__,
            "scalarizer": repr(self.scalarizer),
            "objective_names": list(self.policy.objective_names),
            "meta_loop": loops[0] if loops else None,
        }

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[RUN_SIGNATURE_KEY] = self.run_signature()
        checkpoint["pareto_lightning_train_seed"] = self.train_seed
        checkpoint["pareto_lightning_rollouts"] = self.rollout_reuse.state_dict()
        checkpoint["pareto_lightning_grad_guard"] = self.grad_guard.state_dict()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.checkpoint_step = int(checkpoint.get("global_step", 0))
        if checkpoint.get("pareto_lightning_train_seed") is not None:
            self.train_seed = int(checkpoint["pareto_lightning_train_seed"])
        self.rollout_reuse.load_state_dict(checkpoint.get("pareto_lightning_rollouts", {}))
        self.grad_guard.load_state_dict(checkpoint.get("pareto_lightning_grad_guard", {}))
        if self._trainer is None:
            return
        problems = resume_problems(checkpoint.get(RUN_SIGNATURE_KEY), self.run_signature())
        # Only resuming training is refused: evaluating a checkpoint under another recipe is legitimate.
        if self.trainer.state.fn != "fit":
            if problems:
                from lightning.pytorch.utilities.rank_zero import rank_zero_warn

                rank_zero_warn(
                    "the checkpoint was written by another training setup:\n  "
                    + "\n  ".join(problems)
                    + "\nits "
                    "weights are evaluated with this config's module, rewards and sweep, and the run's config.yaml "
                    "records this config (`model.class_path`, ...), not the checkpoint's."
                )
            return
        max_steps = self.trainer.max_steps
        if 0 < max_steps <= self.checkpoint_step:
            raise ValueError(
                f"`trainer.max_steps`={max_steps} but the checkpoint given to `--ckpt_path` is at step "
                f"{self.checkpoint_step}: resuming would train nothing. Set `trainer.max_steps` above "
                f"{self.checkpoint_step} to train on, or evaluate it with `validate --ckpt_path`."
            )
        if problems:
            raise ValueError(
                "`ckpt_path` holds a checkpoint of another training setup; resuming it here would train on as a "
                "different method:\n  " + "\n  ".join(problems) + "\nresume with the config that wrote it "
                "(its config.yaml sits in the run's log folder), or start a new run without `--ckpt_path`."
            )

    # ------------------------------------------------------------------------------------------------ rollout
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

    def _drop_nonfinite_groups(
        self, rollout: Rollout, raw: Tensor, normalized: Tensor
    ) -> tuple[Rollout, Tensor, Tensor, int]:
        keep = finite_groups(raw, rollout.group_size)  # [B]
        skipped = int((~keep).sum())
        if skipped == 0:
            return rollout, raw, normalized, 0
        if skipped == len(keep):
            raise ValueError(
                f"every group of step {self.global_step} has a NaN/inf reward, so `model.init_args.nan_policy: "
                "skip_group` leaves nothing to train on; fix the reward function or its inputs."
            )
        rows = keep.repeat_interleave(rollout.group_size)  # [N]
        return rollout.select_groups(keep), raw[rows], normalized[rows], skipped

    def _writes_logs(self) -> bool:
        """Whether this optimizer step's ``train/*`` values reach the logger (every ``log_every_n_steps``-th step).

        Lightning writes step-level values only on those steps; computing and passing them on the others cost
        several milliseconds per step (about a tenth of a small model's step) for values nobody reads. So the
        ``train/*`` entries of the trainer's callback metrics refresh on those steps and on the last one.
        """
        trainer = self._trainer
        if trainer is None:
            return True
        step = self.global_step + 1
        last = trainer.max_steps is not None and 0 < trainer.max_steps <= step
        return step % max(1, trainer.log_every_n_steps) == 0 or last or trainer.should_stop

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
        rollout, raw, normalized, skipped = self._drop_nonfinite_groups(rollout, raw, normalized)
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
        self.loss_state = scored.loss_state  # compute_loss keeps what later iterations need in it
        rollout, raw, normalized, utilities = scored.rollout, scored.raw, scored.normalized, scored.utilities
        loss, stats = self.compute_loss(rollout, utilities)
        if self._writes_logs():  # the logger keeps one step in log_every_n_steps: skip the rest's bookkeeping
            logs = {
                "train/loss": loss.detach(),
                "train/utility": utilities.mean(),
                "train/completion_length": rollout.completion_mask.sum(-1).float().mean(),
            }
            for k, name in enumerate(self.policy.objective_names):
                logs[f"train/reward_raw/{name}"] = raw[:, k].mean()
                logs[f"train/reward/{name}"] = normalized[:, k].mean()
            logs.update({f"train/{k}": v for k, v in stats.items()})
            if self.nan_policy == "skip_group":
                logs["train/skipped_groups"] = float(scored.skipped)
            self.log_dict(logs, prog_bar=False, batch_size=len(batch["prompts"]))
        self.log("utility", utilities.mean(), prog_bar=True, logger=False, batch_size=len(batch["prompts"]))
        self._maybe_log_samples(rollout, raw)
        return {"loss": loss, "utility": utilities.mean().detach()}

    # ------------------------------------------------------------------------------------------- evaluation
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
        b = len(batch["prompts"])
        return SweepBatch(
            weight_index=batch["weight_index"],
            weights=batch["weights"],
            greedy=greedy,
            sampled=sampled.view(b, self.eval_num_generations, -1),  # [b, G, K]
            prompts=list(batch["prompts"]),
            completions=greedy_rollout.completions,
        )

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> SweepBatch:
        return self.validation_step(batch, batch_idx)

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> list[dict[str, Any]]:
        """Greedy completions for each (prompt, ``w``) pair: the paper's Table 2 view."""
        rollout, raw, _ = self.rollout(batch, 1, do_sample=False)
        names = self.policy.objective_names
        return [
            {"prompt": p, "w": dict(zip(names, [round(x, 6) for x in w], strict=True)), "completion": c,
             "rewards": dict(zip(names, r, strict=True))}
            for p, w, c, r in zip(rollout.prompts, rollout.weights.tolist(), rollout.completions, raw.tolist(),
                                  strict=True)
        ]  # fmt: skip

    def compute_loss(self, rollout: Rollout, utilities: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        raise NotImplementedError

    def sequence_log_probs(self, rollout: Rollout) -> tuple[Tensor, Tensor | None]:
        """Per-token log-probs ``[N, T]`` under the policy and (when beta > 0) the reference."""
        logp = self.policy.log_probs(rollout)
        ref = self.reference_log_probs(rollout) if self.beta > 0 else None
        return logp, ref

    @torch.no_grad()
    def reference_log_probs(self, rollout: Rollout) -> Tensor:
        """Per-token log-probs ``[N, T]`` under the reference: the starting weights (the base model, adapter
        disabled, with LoRA)."""
        if self.policy.uses_lora:
            with self.policy.model.disable_adapter():
                return self.policy.log_probs(rollout)
        if self.reference_model is None:
            raise RuntimeError(
                "no reference model: it is made when fitting starts with `model.init_args.beta` > 0."
            )
        return self.policy.log_probs(rollout, self.reference_model)

    # ------------------------------------------------------------------------------------------------ logging
    def _maybe_log_samples(self, rollout: Rollout, raw: Tensor) -> None:
        every = self.sample_log_every_n_steps
        experiment = getattr(self.logger, "experiment", None)
        if not every or self.global_step % every or not hasattr(experiment, "add_text"):
            return
        names = self.policy.objective_names
        rows = ["| w | prompt | completion | rewards |", "|---|---|---|---|"]
        for i in range(0, len(rollout), rollout.group_size):
            w = ", ".join(f"{x:.2f}" for x in rollout.weights[i].tolist())
            r = ", ".join(f"{n}={v:.3f}" for n, v in zip(names, raw[i].tolist(), strict=True))
            rows.append(f"| {w} | {rollout.prompts[i]} | {rollout.completions[i]} | {r} |")
        experiment.add_text("train/samples", "\n".join(rows), self.global_step)

    # ---------------------------------------------------------------------------------------------- optimizer
    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """No non-finite gradient reaches the weights (``grad_nan_policy``); one flag is all-reduced over ranks."""
        from lightning.pytorch.plugins.precision import MixedPrecision

        trainer = self._trainer
        plugin = trainer.precision_plugin if trainer is not None else None
        if isinstance(plugin, MixedPrecision) and plugin.scaler is not None:
            return  # float16 loss scaling skips steps with infinite gradients by design

        def any_rank(bad: bool) -> bool:
            return trainer.strategy.reduce_boolean_decision(bad, all=False) if trainer is not None else bad

        skipped = self.grad_guard.before_step(self.policy.named_parameters(), self.global_step, any_rank)
        if self.grad_guard.policy == "skip_step":
            self.log("train/skipped_steps", float(self.grad_guard.skipped), batch_size=1)
        if skipped:
            rank_zero_warn(
                f"step {self.global_step}: non-finite gradients, the step was skipped ({self.grad_guard.skipped} of "
                f"at most `model.init_args.max_skipped_steps`={self.grad_guard.max_skipped_steps})."
            )

    def configure_optimizers(self):
        params = [p for p in self.policy.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=self.learning_rate, weight_decay=self.weight_decay)
        total = self.trainer.max_steps if self.trainer.max_steps and self.trainer.max_steps > 0 else None
        warmup, floor = self.warmup_steps, self.min_lr_ratio

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / (warmup + 1)
            if total is None or total <= warmup:
                return 1.0
            progress = min(1.0, (step - warmup) / (total - warmup))
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
