"""pareto-lightning: preference-conditioned multi-objective LLM alignment with PyTorch Lightning."""

from pareto_lightning.algorithms import GRPOModule, MOODPOModule, PreferenceAlignmentModule
from pareto_lightning.algorithms.guard import GradientGuard
from pareto_lightning.callbacks import CrashCheckpoint, JSONLPredictionWriter, MetaLoop, ParetoEvaluation
from pareto_lightning.data import (
    HFPrompts,
    ListPrompts,
    PreferenceData,
    PreferencePromptDataModule,
    PreferenceSchedule,
    PromptSource,
)
from pareto_lightning.finite import FiniteLogitsGuard, NonFiniteError, use_safe_attention_kernels
from pareto_lightning.generation import (
    ContinuousBatchingGeneration,
    GenerationBackend,
    HFGeneration,
    StaticCacheGeneration,
)
from pareto_lightning.losses import (
    DPOLoss,
    GRPOLoss,
    chunked_token_log_probs,
    cross_weight_advantages,
    dpo_loss,
    group_advantages,
    grpo_loss,
)
from pareto_lightning.losses.distillation import best_of_pool, mixture_distillation_loss
from pareto_lightning.metrics import Hypervolume, PreferenceSweep, PreferenceUtility, PromptSweep
from pareto_lightning.policy import PreferencePolicy, Rollout
from pareto_lightning.preferences import (
    PAPER_EVAL_WEIGHTS,
    DirichletPreferenceSampler,
    mirrored_pairs,
    simplex_grid,
    split_seen_unseen,
    validate_preference,
)
from pareto_lightning.renamed import old_names
from pareto_lightning.rewards import (
    HFRewardModel,
    IdentityNormalizer,
    LLMJudge,
    MaxNormalizer,
    MultiObjectiveReward,
    RewardFunction,
    RewardNormalizer,
    TanhNormalizer,
    TextstatScore,
    VaderSentiment,
    ZScoreNormalizer,
)
from pareto_lightning.rollout import SweepBatch
from pareto_lightning.scalarization import (
    Scalarizer,
    SmoothTchebycheff,
    SteeringBonus,
    Tchebycheff,
    WeightedSum,
)
from pareto_lightning.sharding import end_process_group
from pareto_lightning.tasks import LexiconTask

__version__ = "0.1.0"


__all__ = [
    "ContinuousBatchingGeneration",
    "GenerationBackend",
    "HFGeneration",
    "LexiconTask",
    "PreferenceData",
    "PreferenceSchedule",
    "PromptSweep",
    "StaticCacheGeneration",
    "DPOLoss",
    "GRPOLoss",
    "chunked_token_log_probs",
    "cross_weight_advantages",
    "dpo_loss",
    "group_advantages",
    "grpo_loss",
    "FiniteLogitsGuard",
    "GradientGuard",
    "NonFiniteError",
    "use_safe_attention_kernels",
    "PAPER_EVAL_WEIGHTS",
    "CrashCheckpoint",
    "DirichletPreferenceSampler",
    "GRPOModule",
    "HFPrompts",
    "HFRewardModel",
    "Hypervolume",
    "IdentityNormalizer",
    "JSONLPredictionWriter",
    "LLMJudge",
    "WeightedSum",
    "ListPrompts",
    "MOODPOModule",
    "MaxNormalizer",
    "MetaLoop",
    "MultiObjectiveReward",
    "ParetoEvaluation",
    "PreferenceAlignmentModule",
    "PreferencePolicy",
    "PreferencePromptDataModule",
    "PreferenceSweep",
    "PreferenceUtility",
    "PromptSource",
    "RewardFunction",
    "RewardNormalizer",
    "Rollout",
    "Scalarizer",
    "SmoothTchebycheff",
    "SteeringBonus",
    "ZScoreNormalizer",
    "SweepBatch",
    "TanhNormalizer",
    "TextstatScore",
    "Tchebycheff",
    "VaderSentiment",
    "best_of_pool",
    "end_process_group",
    "mixture_distillation_loss",
    "mirrored_pairs",
    "simplex_grid",
    "split_seen_unseen",
    "validate_preference",
]

__getattr__ = old_names(__name__)  # the old names of renamed objects (pareto_lightning.renamed)
