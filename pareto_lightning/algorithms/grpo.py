"""GRPO with a pluggable scalarization (paper sections 2.3-2.6; Shao et al., 2024)."""

from __future__ import annotations

from typing import Any, Literal

from torch import Tensor

from pareto_lightning.algorithms.base import PreferenceAlignmentModule
from pareto_lightning.algorithms.reuse import RolloutReuse
from pareto_lightning.data.contract import preference_data, update_schedule
from pareto_lightning.losses import group_advantages, grpo_loss, zero_spread_fraction
from pareto_lightning.policy import PreferencePolicy, Rollout
from pareto_lightning.rewards import MultiObjectiveReward
from pareto_lightning.scalarization import Scalarizer


class GRPOModule(PreferenceAlignmentModule):
    """Group Relative Policy Optimization on scalarized multi-objective rewards.

    Per step: ``G`` completions per prompt under the prompt's ``w``; rewards ``[B*G, K]`` -> utilities ``[B*G]``
    with the scalarizer (``LinearScalarization`` = Grid-GRPO, ``SmoothTchebycheff`` = Weighted-GRPO); group-relative
    advantages; clipped-ratio loss with a k3 KL penalty to the reference model.

    Each rollout serves ``num_iterations`` optimizer steps (the GRPO paper's ``mu``, TRL's ``num_iterations``):
    its first step records the "old" log-probs (and the reference's), later steps use the importance ratio
    ``exp(logp - old_logp)`` clipped to ``[1 - epsilon, 1 + epsilon_high]``. The data module serves the same
    batches for those steps. With ``num_iterations = 1`` the ratio is exactly 1 (its gradient is the policy
    gradient), ``epsilon`` has no effect, and ``train/ratio_mean`` and ``train/clip_fraction`` are not logged.

    Args:
        epsilon: lower clip ``1 - epsilon`` of the ratio.
        epsilon_high: upper clip (defaults to ``epsilon``).
        num_iterations: optimizer steps per rollout (``>= 1``); with a ``MetaLoop`` it must divide ``inner_steps``.
        advantage_scale: ``"group"`` (GRPO), ``"batch"`` or ``"none"`` (Dr. GRPO) normalization of advantages.
        aggregation: ``"sequence_mean"`` (GRPO) or ``"token_mean"`` (DAPO) loss aggregation.
        (other arguments: see :class:`PreferenceAlignmentModule`)

    Example YAML (``model:`` section of a recipe)::

        class_path: pareto_lightning.GRPOModule
        init_args:
          num_generations: 8
          beta: 0.05
          scalarizer: {class_path: pareto_lightning.SmoothTchebycheff, init_args: {mu: 0.1}}

    Example:
        >>> from pareto_lightning.tasks import LexiconTask
        >>> task = LexiconTask()
        >>> module = GRPOModule(task.policy(max_new_tokens=4), task.reward(), SmoothTchebycheff(), num_generations=2)
        >>> module.num_generations, module.num_objectives
        (2, 2)
    """

    def __init__(
        self,
        policy: PreferencePolicy,
        reward: MultiObjectiveReward,
        scalarizer: Scalarizer,
        num_generations: int = 8,
        beta: float = 0.1,
        epsilon: float = 0.2,
        epsilon_high: float | None = None,
        advantage_scale: Literal["group", "batch", "none"] = "group",
        aggregation: Literal["sequence_mean", "token_mean"] = "sequence_mean",
        num_iterations: int = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(policy, reward, scalarizer, num_generations=num_generations, beta=beta, **kwargs)
        problems = []
        if not epsilon > 0 or (epsilon_high is not None and not epsilon_high > 0):
            problems.append(
                f"`model.init_args.epsilon`/`epsilon_high` must be > 0; got {epsilon}, {epsilon_high}."
            )
        if advantage_scale not in ("group", "batch", "none"):
            problems.append(
                f"`model.init_args.advantage_scale` must be 'group', 'batch' or 'none'; got {advantage_scale!r}."
            )
        if aggregation not in ("sequence_mean", "token_mean"):
            problems.append(
                f"`model.init_args.aggregation` must be 'sequence_mean' or 'token_mean'; got {aggregation!r}."
            )
        if isinstance(num_iterations, bool) or not isinstance(num_iterations, int) or num_iterations < 1:
            problems.append(
                f"`model.init_args.num_iterations` must be an integer >= 1; got {num_iterations!r}."
            )
        if problems:
            raise ValueError("invalid GRPOModule configuration:\n  " + "\n  ".join(problems))
        self.epsilon, self.epsilon_high = epsilon, epsilon_high
        self.advantage_scale, self.aggregation = advantage_scale, aggregation
        self.num_iterations = num_iterations
        self.rollout_reuse = RolloutReuse(num_iterations)

    def setup(self, stage: str) -> None:
        super().setup(stage)
        # The data module serves each window of batches for num_iterations steps, as the rollouts are reused.
        if stage == "fit":
            update_schedule(preference_data(self._trainer), batch_reuse=self.num_iterations)

    def compute_loss(self, rollout: Rollout, utilities: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        state = self.loss_state  # empty at a rollout's first iteration, kept for the later ones
        if not state:
            advantages = group_advantages(utilities, rollout.group_size, scale=self.advantage_scale)  # [N]
            logp, ref = self.sequence_log_probs(rollout)  # [N, T] each
            state.update(advantages=advantages, old_logp=logp.detach(), ref_logp=ref)
        else:  # the reference and the advantages do not change between iterations: no second forward
            logp = self.policy.log_probs(rollout)  # [N, T]
        loss, stats = grpo_loss(
            logp, state["old_logp"], state["ref_logp"], state["advantages"], rollout.completion_mask,
            epsilon=self.epsilon, epsilon_high=self.epsilon_high, beta=self.beta, aggregation=self.aggregation,
        )  # fmt: skip
        logs = stats._asdict()
        if self.num_iterations == 1:  # the ratio is exactly 1: its mean and clip fraction would log constants
            logs = {k: v for k, v in logs.items() if k not in ("ratio_mean", "clip_fraction")}
        logs["zero_spread_fraction"] = zero_spread_fraction(utilities, rollout.group_size)
        return loss, logs


from pareto_lightning.scalarization import SmoothTchebycheff  # noqa: E402,F401  (doctest namespace)
