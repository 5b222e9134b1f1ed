"""Rewards (paper section A.2): reward functions, a frozen Hugging Face reward model, offline scorers, normalizers."""

from pareto_lightning.renamed import renamed
from pareto_lightning.rewards import functional
from pareto_lightning.rewards.base import (
    DeclaresObjective,
    MultiObjectiveReward,
    RewardFunction,
    declared_objective,
)
from pareto_lightning.rewards.hf_reward_model import HH_TEMPLATE, HFRewardModel
from pareto_lightning.rewards.judge import DEFAULT_JUDGE_TEMPLATE, LLMJudge
from pareto_lightning.rewards.normalizers import (
    IdentityNormalizer,
    MaxNormalizer,
    RewardNormalizer,
    TanhNormalizer,
    ZScoreNormalizer,
)
from pareto_lightning.rewards.scorers import MissingPackageError, TextstatScore, VaderSentiment

__all__ = [
    "DEFAULT_JUDGE_TEMPLATE",
    "HH_TEMPLATE",
    "DeclaresObjective",
    "HFRewardModel",
    "IdentityNormalizer",
    "LLMJudge",
    "MaxNormalizer",
    "MissingPackageError",
    "MultiObjectiveReward",
    "RewardFunction",
    "RewardNormalizer",
    "ZScoreNormalizer",
    "TanhNormalizer",
    "TextstatScore",
    "VaderSentiment",
    "declared_objective",
    "functional",
]


def __getattr__(name: str) -> object:
    """The old names of renamed classes and functions, with a FutureWarning (`pareto_lightning.renamed`)."""
    return renamed(__name__, name)
