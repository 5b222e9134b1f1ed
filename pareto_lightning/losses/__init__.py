"""Pure loss functions (plain torch), each returning ``(loss, stats)`` with a NamedTuple of detached stats; the
group layout they share (:mod:`~pareto_lightning.losses.groups`); and ``GRPOLoss`` / ``DPOLoss``, the modules an
algorithm is configured with."""

from pareto_lightning.losses.chunked_logprobs import chunked_token_log_probs
from pareto_lightning.losses.cross_weight import cross_weight_advantages, prompt_index
from pareto_lightning.losses.dpo import DPOStats, dpo_hyperparameter_problems, dpo_loss
from pareto_lightning.losses.groups import best_worst_pairs, finite_groups, tied_groups
from pareto_lightning.losses.grpo import (
    GRPOStats,
    group_advantages,
    grpo_hyperparameter_problems,
    grpo_loss,
    zero_spread_fraction,
)
from pareto_lightning.losses.logprobs import token_log_probs
from pareto_lightning.losses.modules import DPOLoss, GRPOLoss

__all__ = [
    "DPOLoss",
    "DPOStats",
    "GRPOLoss",
    "GRPOStats",
    "best_worst_pairs",
    "chunked_token_log_probs",
    "cross_weight_advantages",
    "dpo_hyperparameter_problems",
    "dpo_loss",
    "finite_groups",
    "group_advantages",
    "grpo_hyperparameter_problems",
    "grpo_loss",
    "prompt_index",
    "tied_groups",
    "token_log_probs",
    "zero_spread_fraction",
]
