"""GRPO with a pluggable scalarization (paper sections 2.3-2.6; Shao et al., 2024)."""

from __future__ import annotations

from typing import Any, Literal

from torch import Tensor

from pareto_lightning.algorithms.base import PreferenceAlignmentModule
from pareto_lightning.losses import group_advantages, grpo_loss, zero_spread_fraction
from pareto_lightning.policy import PreferencePolicy, Rollout
from pareto_lightning.rewards import MultiObjectiveReward
from pareto_lightning.scalarization import Scalarizer


class GRPOModule(PreferenceAlignmentModule):
    """Group Relative Policy Optimization on scalarized multi-objective rewards.

    Per step: ``G`` completions per prompt under the prompt's ``w``; rewards ``[B*G, K]`` -> utilities ``[B*G]``
    with the scalarizer (``LinearScalarization`` = Grid-GRPO, ``SmoothTchebycheff`` = Weighted-GRPO); group-relative
    advantages; clipped-ratio loss with a k3 KL penalty to the reference model. One policy update per rollout, so
    the "old" log-probs are the current ones detached (the ratio is 1 and its gradient is the policy gradient), so
    ``epsilon`` has no effect yet and the ratio's statistics are not logged.

    Args:
        epsilon: lower clip ``1 - epsilon`` of the ratio.
        epsilon_high: upper clip (defaults to ``epsilon``).
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
        if problems:
            raise ValueError("invalid GRPOModule configuration:\n  " + "\n  ".join(problems))
        self.epsilon, self.epsilon_high = epsilon, epsilon_high
        self.advantage_scale, self.aggregation = advantage_scale, aggregation

    def compute_loss(self, rollout: Rollout, utilities: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        advantages = group_advantages(utilities, rollout.group_size, scale=self.advantage_scale)  # [N]
        logp, ref = self.sequence_log_probs(rollout)  # [N, T] each
        loss, stats = grpo_loss(
            logp, logp.detach(), ref, advantages, rollout.completion_mask,
            epsilon=self.epsilon, epsilon_high=self.epsilon_high, beta=self.beta, aggregation=self.aggregation,
        )  # fmt: skip
        # With one update per rollout the ratio is exactly 1: its mean and clip fraction would log constants.
        logs = {k: v for k, v in stats._asdict().items() if k not in ("ratio_mean", "clip_fraction")}
        logs["zero_spread_fraction"] = zero_spread_fraction(utilities, rollout.group_size)
        return loss, logs


from pareto_lightning.scalarization import SmoothTchebycheff  # noqa: E402,F401  (doctest namespace)
