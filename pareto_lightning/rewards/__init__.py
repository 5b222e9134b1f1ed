"""Rewards (paper section A.2): reward functions, a frozen Hugging Face reward model, normalizers."""

from pareto_lightning.rewards import functional
from pareto_lightning.rewards.base import MultiObjectiveReward, RewardFunction
from pareto_lightning.rewards.hf_reward_model import DEFAULT_TEMPLATE, HFRewardModel
from pareto_lightning.rewards.normalizers import (
    IdentityNormalizer,
    MaxScaler,
    RewardNormalizer,
    Standardizer,
    TanhSquash,
)

__all__ = [
    "DEFAULT_TEMPLATE",
    "HFRewardModel",
    "IdentityNormalizer",
    "MaxScaler",
    "MultiObjectiveReward",
    "RewardFunction",
    "RewardNormalizer",
    "Standardizer",
    "TanhSquash",
    "functional",
]
