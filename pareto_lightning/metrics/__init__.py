"""Metrics of the evaluation sweep: preference-utility shortfall, per-preference (and per-prompt) means, hypervolume.

``functional`` holds the plain-torch maths; the classes are thin ``torchmetrics.Metric`` wrappers that
accumulate across batches and processes.
"""

from pareto_lightning.metrics.hypervolume import Hypervolume
from pareto_lightning.metrics.preference_utility import PreferenceUtility
from pareto_lightning.metrics.prompt_sweep import PromptSweep
from pareto_lightning.metrics.sweep import PreferenceSweep, SweepMeans
from pareto_lightning.renamed import renamed

__all__ = ["Hypervolume", "PreferenceSweep", "PreferenceUtility", "PromptSweep", "SweepMeans"]


def __getattr__(name: str) -> object:
    """The old names of renamed classes and functions, with a FutureWarning (`pareto_lightning.renamed`)."""
    return renamed(__name__, name)
