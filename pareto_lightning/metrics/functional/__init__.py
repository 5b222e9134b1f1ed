"""Functional metrics: plain torch functions (``moocore`` for the exact hypervolume)."""

from pareto_lightning.metrics.functional.front import max_gap, spearman_correlation
from pareto_lightning.metrics.functional.pareto import hypervolume, non_dominated
from pareto_lightning.metrics.functional.steering import PromptSteering, prompt_spearman, prompt_steerability
from pareto_lightning.metrics.functional.utility import preference_utility, shortfall

__all__ = [
    "PromptSteering",
    "hypervolume",
    "max_gap",
    "non_dominated",
    "preference_utility",
    "prompt_spearman",
    "prompt_steerability",
    "shortfall",
    "spearman_correlation",
]
