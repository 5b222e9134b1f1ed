"""Rewards (paper section A.2): reward functions, a frozen Hugging Face reward model, offline scorers, normalizers."""

from pareto_lightning.renamed import old_names
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

__getattr__ = old_names(__name__)  # the old names of renamed objects (pareto_lightning.renamed)
