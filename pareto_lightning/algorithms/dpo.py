"""Online DPO with a pluggable scalarization: MO-ODPO (paper section 2.2; Gupta et al., 2025)."""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor

from pareto_lightning.algorithms.base import PreferenceAlignmentModule
from pareto_lightning.losses import dpo_loss
from pareto_lightning.policy import PreferencePolicy, Rollout
from pareto_lightning.rewards import MultiObjectiveReward
from pareto_lightning.scalarization import Scalarizer


class MOODPOModule(PreferenceAlignmentModule):
    """Multi-objective online DPO.

    Per step: ``G`` (default 2) completions per prompt under its ``w``; rewards are scalarized into utilities; in
    each group the highest-utility completion is *chosen* and the lowest *rejected*; the DPO loss is taken against
    the reference model on sequence log-prob sums. Groups whose utilities are all equal carry no preference: they
    give no gradient and are counted in ``train/tied_fraction``.

    Example:
        >>> from pareto_lightning.tasks import LexiconTask
        >>> from pareto_lightning import LinearScalarization
        >>> task = LexiconTask()
        >>> module = MOODPOModule(task.policy(max_new_tokens=4), task.reward(), LinearScalarization())
        >>> module.num_generations, module.loss_type
        (2, 'sigmoid')
    """

    def __init__(
        self,
        policy: PreferencePolicy,
        reward: MultiObjectiveReward,
        scalarizer: Scalarizer,
        beta: float = 0.1,
        loss_type: Literal["sigmoid", "ipo"] = "sigmoid",
        num_generations: int = 2,
        **kwargs: Any,
    ) -> None:
        super().__init__(policy, reward, scalarizer, num_generations=num_generations, beta=beta, **kwargs)
        if not beta > 0:
            raise ValueError(f"`model.init_args.beta` must be > 0 for DPO; got {beta}.")
        if loss_type not in ("sigmoid", "ipo"):
            raise ValueError(f"`model.init_args.loss_type` must be 'sigmoid' or 'ipo'; got {loss_type!r}.")
        self.loss_type = loss_type

    def compute_loss(self, rollout: Rollout, utilities: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        g = rollout.group_size
        grouped = utilities.view(-1, g)  # [B, G]
        offsets = torch.arange(grouped.shape[0], device=utilities.device) * g  # [B]
        chosen = offsets + grouped.argmax(-1)  # [B] row index of the best completion
        rejected = offsets + grouped.argmin(-1)  # [B]
        valid = grouped.amax(-1) > grouped.amin(-1)  # [B] ties carry no preference
        mask = rollout.completion_mask.to(torch.float32)
        logp, ref = self.sequence_log_probs(rollout)  # [N, T]
        seq = (logp * mask).sum(-1)  # [N]
        ref_seq = (ref * mask).sum(-1)  # [N]
        loss, stats = dpo_loss(
            seq[chosen], seq[rejected], ref_seq[chosen], ref_seq[rejected],
            beta=self.beta, loss_type=self.loss_type, mask=valid,
        )  # fmt: skip
        logs = {k: torch.as_tensor(v, dtype=torch.float32) for k, v in stats._asdict().items()}
        logs["tied_fraction"] = 1.0 - valid.float().mean()
        return loss, logs
