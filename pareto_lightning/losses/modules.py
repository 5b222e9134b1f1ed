"""The losses as configurable modules: hyperparameters checked once when built, ``forward`` pure.

An algorithm module takes one of these as ``model.init_args.loss`` (a ``class_path`` in YAML); the maths is in
:func:`~pareto_lightning.losses.grpo.grpo_loss` and :func:`~pareto_lightning.losses.dpo.dpo_loss`.
"""

from __future__ import annotations

from typing import Any, Literal

from torch import Tensor, nn

from pareto_lightning.config_errors import configuration_error, quote_keys
from pareto_lightning.losses.dpo import DPOStats, dpo_hyperparameter_problems, dpo_loss
from pareto_lightning.losses.grpo import GRPOStats, group_advantages, grpo_hyperparameter_problems, grpo_loss

LOSS_KEY = "model.init_args.loss.init_args"
"""Where a recipe sets a loss's hyperparameters."""


class AlignmentLoss(nn.Module):
    """What an algorithm module reads from its loss besides calling it: the KL or DPO coefficient ``beta``, and
    whether the loss needs the reference model's log-probs (the module keeps a frozen reference only then)."""

    beta: float

    @classmethod
    def problems(cls, **hyperparameters: Any) -> list[str]:
        """What is wrong with these ``__init__`` arguments, one line per problem, each naming its argument."""
        raise NotImplementedError

    @property
    def needs_reference(self) -> bool:
        raise NotImplementedError


class GRPOLoss(AlignmentLoss):
    """The GRPO loss with its hyperparameters: group-relative advantages and the clipped-ratio objective.

    Args:
        epsilon: lower clip ``1 - epsilon`` of the importance ratio (> 0).
        epsilon_high: upper clip ``1 + epsilon_high`` (DAPO's clip-higher; None: ``epsilon``).
        beta: coefficient of the k3 KL penalty to the reference (>= 0; 0 needs no reference model).
        advantage_scale: ``"group"`` (GRPO), ``"batch"`` or ``"none"`` (Dr. GRPO) normalization of advantages.
        aggregation: ``"sequence_mean"`` (GRPO) or ``"token_mean"`` (DAPO) loss aggregation.

    Example YAML (``model.init_args.loss``)::

        class_path: pareto_lightning.GRPOLoss
        init_args: {beta: 0.05, aggregation: token_mean}

    Example:
        >>> import torch
        >>> loss_fn = GRPOLoss(beta=0.0)
        >>> logp = torch.zeros(2, 3, requires_grad=True)
        >>> advantages = loss_fn.advantages(torch.tensor([0.0, 1.0]), group_size=2)
        >>> loss, stats = loss_fn(logp, logp.detach(), None, advantages, torch.ones(2, 3))
        >>> loss.item(), loss_fn.needs_reference
        (0.0, False)
    """

    def __init__(
        self,
        epsilon: float = 0.2,
        epsilon_high: float | None = None,
        beta: float = 0.1,
        advantage_scale: Literal["group", "batch", "none"] = "group",
        aggregation: Literal["sequence_mean", "token_mean"] = "sequence_mean",
    ) -> None:
        super().__init__()
        problems = self.problems(
            epsilon=epsilon, epsilon_high=epsilon_high, beta=beta, advantage_scale=advantage_scale,
            aggregation=aggregation,
        )  # fmt: skip
        if problems:
            raise configuration_error(type(self).__name__, quote_keys(problems, LOSS_KEY))
        self.epsilon, self.epsilon_high, self.beta = epsilon, epsilon_high, beta
        self.advantage_scale, self.aggregation = advantage_scale, aggregation

    @classmethod
    def problems(cls, **hyperparameters: Any) -> list[str]:
        return grpo_hyperparameter_problems(**hyperparameters)

    @property
    def needs_reference(self) -> bool:
        """Whether the loss reads the reference model's log-probs (``beta > 0``)."""
        return self.beta > 0

    def advantages(self, utilities: Tensor, group_size: int) -> Tensor:
        """``[B*G]`` group-relative advantages of ``[B*G]`` utilities (see :func:`group_advantages`)."""
        return group_advantages(utilities, group_size, scale=self.advantage_scale)

    def forward(
        self, logp: Tensor, old_logp: Tensor, ref_logp: Tensor | None, advantages: Tensor, mask: Tensor
    ) -> tuple[Tensor, GRPOStats]:
        """The loss and its stats on ``[N, T]`` log-probs and ``[N]`` advantages (see :func:`grpo_loss`)."""
        return grpo_loss(
            logp, old_logp, ref_logp, advantages, mask,
            epsilon=self.epsilon, epsilon_high=self.epsilon_high, beta=self.beta, aggregation=self.aggregation,
        )  # fmt: skip

    def extra_repr(self) -> str:
        return (
            f"epsilon={self.epsilon}, epsilon_high={self.epsilon_high}, beta={self.beta}, "
            f"advantage_scale={self.advantage_scale!r}, aggregation={self.aggregation!r}"
        )


class DPOLoss(AlignmentLoss):
    """The DPO (sigmoid) or IPO loss on chosen/rejected pairs, with its hyperparameters.

    Args:
        beta: inverse temperature of the implicit reward (DPO) or IPO's ``tau`` (> 0).
        loss_type: ``"sigmoid"`` (DPO) or ``"ipo"``.

    Example:
        >>> import torch
        >>> zero = torch.zeros(2, requires_grad=True)
        >>> loss, stats = DPOLoss()(zero, zero, zero.detach(), zero.detach())
        >>> round(loss.item(), 4), DPOLoss().needs_reference
        (0.6931, True)
    """

    def __init__(self, beta: float = 0.1, loss_type: Literal["sigmoid", "ipo"] = "sigmoid") -> None:
        super().__init__()
        problems = self.problems(beta=beta, loss_type=loss_type)
        if problems:
            raise configuration_error(type(self).__name__, quote_keys(problems, LOSS_KEY))
        self.beta, self.loss_type = beta, loss_type

    @classmethod
    def problems(cls, **hyperparameters: Any) -> list[str]:
        return dpo_hyperparameter_problems(**hyperparameters)

    @property
    def needs_reference(self) -> bool:
        """Always: the implicit reward is measured against the reference."""
        return True

    def forward(
        self,
        policy_chosen: Tensor,
        policy_rejected: Tensor,
        ref_chosen: Tensor,
        ref_rejected: Tensor,
        mask: Tensor | None = None,
    ) -> tuple[Tensor, DPOStats]:
        """The loss and its stats on ``[P]`` sequence log-prob sums of ``P`` pairs (see :func:`dpo_loss`)."""
        return dpo_loss(
            policy_chosen, policy_rejected, ref_chosen, ref_rejected,
            beta=self.beta, loss_type=self.loss_type, mask=mask,
        )  # fmt: skip

    def extra_repr(self) -> str:
        return f"beta={self.beta}, loss_type={self.loss_type!r}"


__all__ = ["LOSS_KEY", "AlignmentLoss", "DPOLoss", "GRPOLoss"]
