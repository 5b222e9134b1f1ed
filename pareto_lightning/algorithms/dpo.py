"""Online DPO with a pluggable scalarization: MO-ODPO (paper section 2.2; Gupta et al., 2025)."""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor

from pareto_lightning.algorithms.base import PreferenceAlignmentModule
from pareto_lightning.algorithms.loss_args import module_loss
from pareto_lightning.algorithms.reuse import FirstIteration
from pareto_lightning.config_errors import configuration_error, quote_keys
from pareto_lightning.losses.groups import best_worst_pairs
from pareto_lightning.losses.modules import DPOLoss
from pareto_lightning.policy import PreferencePolicy, Rollout
from pareto_lightning.rewards import MultiObjectiveReward
from pareto_lightning.scalarization import Scalarizer


class MOODPOModule(PreferenceAlignmentModule):
    """Multi-objective online DPO.

    Per step: ``G`` (default 2) completions per prompt under its ``w``; rewards are scalarized into utilities; in
    each group the highest-utility completion is *chosen* and the lowest *rejected*
    (:func:`~pareto_lightning.losses.groups.best_worst_pairs`); the DPO loss is taken against the reference model
    on sequence log-prob sums. Groups whose utilities are all equal carry no preference: they give no gradient and
    are counted in ``train/tied_fraction``.

    The loss is a :class:`~pareto_lightning.DPOLoss`: the one given as ``loss``, or by default one built from
    ``beta`` and ``loss_type`` (a recipe sets either those or ``loss``, not both).

    Args:
        beta: the default loss's inverse temperature (> 0).
        loss_type: the default loss's ``"sigmoid"`` (DPO) or ``"ipo"``.
        loss: the loss (``class_path: pareto_lightning.DPOLoss``); None: the default loss above.
        (other arguments: see :class:`PreferenceAlignmentModule`)

    Example:
        >>> from pareto_lightning.tasks import LexiconTask
        >>> from pareto_lightning import WeightedSum
        >>> task = LexiconTask()
        >>> module = MOODPOModule(task.policy(max_new_tokens=4), task.reward(), WeightedSum())
        >>> module.num_generations, module.loss
        (2, DPOLoss(beta=0.1, loss_type='sigmoid'))
    """

    def __init__(
        self,
        policy: PreferencePolicy,
        reward: MultiObjectiveReward,
        scalarizer: Scalarizer,
        beta: float = 0.1,
        loss_type: Literal["sigmoid", "ipo"] = "sigmoid",
        num_generations: int = 2,
        loss: DPOLoss | None = None,
        **kwargs: Any,
    ) -> None:
        arguments = {"beta": beta, "loss_type": loss_type}
        problems = DPOLoss.problems(**arguments) if loss is None else []
        if problems:
            raise configuration_error(type(self).__name__, quote_keys(problems, "model.init_args"))
        loss = module_loss(type(self).__name__, loss, DPOLoss, arguments)
        super().__init__(policy, reward, scalarizer, loss, num_generations=num_generations, **kwargs)
        self.loss: DPOLoss = loss

    def compute_loss(
        self, rollout: Rollout, utilities: Tensor, first: FirstIteration | None, rewards: Tensor
    ) -> tuple[Tensor, dict[str, Tensor], None]:
        """The DPO loss on each group's best and worst completion (one update per rollout: nothing kept)."""
        chosen, rejected, valid = best_worst_pairs(utilities, rollout.group_size)  # [B] each
        mask = rollout.completion_mask.to(torch.float32)
        logp, ref = self.sequence_log_probs(rollout)  # [N, T]
        seq = (logp * mask).sum(-1)  # [N]
        ref_seq = (ref * mask).sum(-1)  # [N]
        loss, stats = self.loss(seq[chosen], seq[rejected], ref_seq[chosen], ref_seq[rejected], mask=valid)
        logs = {k: torch.as_tensor(v, dtype=torch.float32) for k, v in stats._asdict().items()}
        logs["tied_fraction"] = 1.0 - valid.float().mean()
        return loss, logs, None

__all__ = [
    "MOODPOModule",
]
