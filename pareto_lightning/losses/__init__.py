"""Pure loss functions (plain torch): each returns ``(loss, stats)`` with a NamedTuple of detached stats."""

from pareto_lightning.losses.chunked_logprobs import chunked_token_log_probs
from pareto_lightning.losses.dpo import DPOStats, dpo_loss
from pareto_lightning.losses.grpo import GRPOStats, group_advantages, grpo_loss, zero_spread_fraction
from pareto_lightning.losses.logprobs import token_log_probs

__all__ = [
    "DPOStats",
    "GRPOStats",
    "chunked_token_log_probs",
    "dpo_loss",
    "group_advantages",
    "grpo_loss",
    "token_log_probs",
    "zero_spread_fraction",
]
