"""GRPO with a pluggable scalarization (paper sections 2.3-2.6; Shao et al., 2024)."""

from __future__ import annotations

from typing import Any, Literal

from torch import Tensor

from pareto_lightning.algorithms.base import PreferenceAlignmentModule
from pareto_lightning.algorithms.loss_args import module_loss
from pareto_lightning.algorithms.reuse import FirstIteration, RolloutReuse
from pareto_lightning.config_errors import configuration_error, quote_keys
from pareto_lightning.data.contract import preference_data, update_schedule
from pareto_lightning.losses.cross_weight import cross_weight_advantages, prompt_index
from pareto_lightning.losses.grpo import zero_spread_fraction
from pareto_lightning.losses.modules import GRPOLoss
from pareto_lightning.policy import PreferencePolicy, Rollout
from pareto_lightning.rewards import MultiObjectiveReward
from pareto_lightning.scalarization import Scalarizer


class GRPOModule(PreferenceAlignmentModule):
    """Group Relative Policy Optimization on scalarized multi-objective rewards.

    Per step: ``G`` completions per prompt under the prompt's ``w``; rewards ``[B*G, K]`` -> utilities ``[B*G]``
    with the scalarizer (``WeightedSum`` = Grid-GRPO, ``SmoothTchebycheff`` = Weighted-GRPO); group-relative
    advantages; clipped-ratio loss with a k3 KL penalty to the reference model.

    Each rollout serves ``num_iterations`` optimizer steps (the GRPO paper's ``mu``, TRL's ``num_iterations``):
    its first step records the "old" log-probs (and the reference's), later steps use the importance ratio
    ``exp(logp - old_logp)`` clipped to ``[1 - epsilon, 1 + epsilon_high]``. The data module serves the same
    batches for those steps. With ``num_iterations = 1`` the ratio is exactly 1 (its gradient is the policy
    gradient), ``epsilon`` has no effect, and ``train/ratio_mean`` and ``train/clip_fraction`` are not logged.

    The loss is a :class:`~pareto_lightning.GRPOLoss`: the one given as ``loss``, or by default one built from
    ``beta``, ``epsilon``, ``epsilon_high``, ``advantage_scale`` and ``aggregation`` (a recipe sets either those or
    ``loss``, not both).

    Args:
        beta: KL coefficient of the default loss (``beta == 0`` skips the reference model).
        epsilon: lower clip ``1 - epsilon`` of the ratio (default loss).
        epsilon_high: upper clip (defaults to ``epsilon``) (default loss).
        advantage_scale: ``"group"`` (GRPO), ``"batch"`` or ``"none"`` (Dr. GRPO) normalization of advantages
            (default loss).
        aggregation: ``"sequence_mean"`` (GRPO) or ``"token_mean"`` (DAPO) loss aggregation (default loss).
        num_iterations: optimizer steps per rollout (``>= 1``); with a ``MetaLoop`` it must divide ``inner_steps``.
        cross_weight: coefficient of the cross-weight advantage added to the group advantages (a finite float
            >= 0; see :func:`~pareto_lightning.losses.cross_weight.cross_weight_advantages`): each completion is
            also compared with the same prompt's completions under the other weights of the batch, which the
            group baseline cannot do. It needs prompts answered under several weights
            (``data.init_args.weights_per_prompt >= 2`` with ``per_prompt_preferences: true``, so not with a
            ``MetaLoop``, which holds one weight per task). 0 (default): GRPO.
        loss: the loss (``class_path: pareto_lightning.GRPOLoss``); None: the default loss above.
        (other arguments: see :class:`PreferenceAlignmentModule`)

    Example YAML (``model:`` section of a recipe)::

        class_path: pareto_lightning.GRPOModule
        init_args:
          num_generations: 8
          beta: 0.05
          scalarizer: {class_path: pareto_lightning.SmoothTchebycheff, init_args: {mu: 0.1}}

    or, with the loss spelled out (instead of ``beta``)::

          loss: {class_path: pareto_lightning.GRPOLoss, init_args: {beta: 0.05, aggregation: token_mean}}

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
        cross_weight: float = 0.0,
        loss: GRPOLoss | None = None,
        **kwargs: Any,
    ) -> None:
        arguments = {
            "epsilon": epsilon, "epsilon_high": epsilon_high, "beta": beta, "advantage_scale": advantage_scale,
            "aggregation": aggregation,
        }  # fmt: skip
        problems = GRPOLoss.problems(**arguments) if loss is None else []
        if isinstance(num_iterations, bool) or not isinstance(num_iterations, int) or num_iterations < 1:
            problems.append(f"`num_iterations` must be an integer >= 1; got {num_iterations!r}")
        if isinstance(cross_weight, bool) or not isinstance(cross_weight, (int, float)) or not (
            0 <= cross_weight < float("inf")
        ):
            problems.append(f"`cross_weight` must be a finite float >= 0; got {cross_weight!r}")
        if problems:
            raise configuration_error(type(self).__name__, quote_keys(problems, "model.init_args"))
        loss = module_loss(type(self).__name__, loss, GRPOLoss, arguments)
        super().__init__(policy, reward, scalarizer, loss, num_generations=num_generations, **kwargs)
        self.loss: GRPOLoss = loss
        self.num_iterations = num_iterations
        self.cross_weight = float(cross_weight)
        self.rollout_reuse = RolloutReuse(num_iterations)

    def setup(self, stage: str) -> None:
        super().setup(stage)
        # The data module serves each window of batches for num_iterations steps, as the rollouts are reused.
        if stage == "fit":
            data = preference_data(self._trainer)
            update_schedule(data, batch_reuse=self.num_iterations)
            if self.cross_weight > 0 and data is not None and data.schedule.weights_per_prompt < 2:
                raise ValueError(
                    f"`model.init_args.cross_weight: {self.cross_weight}` compares each prompt's completions "
                    "across weights, but `data.init_args.weights_per_prompt` is "
                    f"{data.schedule.weights_per_prompt}: every prompt is answered under one weight, so the term "
                    "is zero. Set `data.init_args.weights_per_prompt: 2` (or more) with "
                    "`data.init_args.per_prompt_preferences: true`, or `model.init_args.cross_weight: 0`."
                )

    def compute_loss(
        self, rollout: Rollout, utilities: Tensor, first: FirstIteration | None, rewards: Tensor
    ) -> tuple[Tensor, dict[str, Tensor], FirstIteration]:
        """The GRPO loss on ``rollout``; its first step keeps the advantages and the old and reference log-probs
        (``first``), which do not change between iterations: later steps need no second reference forward."""
        if first is None:
            advantages = self.loss.advantages(utilities, rollout.group_size)  # [N]
            if self.cross_weight > 0:
                across = cross_weight_advantages(
                    rewards, rollout.weights, prompt_index(rollout.prompts), self.loss.advantage_scale
                )  # [N]
                advantages = advantages + self.cross_weight * across.to(advantages)
            logp, ref = self.sequence_log_probs(rollout)  # [N, T] each
            first = FirstIteration(advantages=advantages, old_logp=logp.detach(), ref_logp=ref)
        else:
            logp = self.policy.log_probs(rollout)  # [N, T]
        loss, stats = self.loss(
            logp, first.old_logp, first.ref_logp, first.advantages, rollout.completion_mask
        )
        logs = stats._asdict()
        if self.num_iterations == 1:  # the ratio is exactly 1: its mean and clip fraction would log constants
            logs = {k: v for k, v in logs.items() if k not in ("ratio_mean", "clip_fraction")}
        logs["zero_spread_fraction"] = zero_spread_fraction(utilities, rollout.group_size)
        return loss, logs, first


from pareto_lightning.scalarization import SmoothTchebycheff  # noqa: E402,F401  (doctest namespace)

__all__ = [
    "GRPOModule",
]
