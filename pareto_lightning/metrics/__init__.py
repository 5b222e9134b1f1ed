"""Metrics of the evaluation sweep: preference-utility shortfall, per-preference (and per-prompt) means, hypervolume.

``functional`` holds the plain-torch maths; the classes are thin ``torchmetrics.Metric`` wrappers that
accumulate across batches and processes.
"""

from pareto_lightning.metrics.hypervolume import Hypervolume
from pareto_lightning.metrics.preference_utility import PreferenceUtility
from pareto_lightning.metrics.prompt_sweep import PromptSweep
from pareto_lightning.metrics.sweep import PreferenceSweep, SweepMeans
from pareto_lightning.renamed import old_names

__all__ = ["Hypervolume", "PreferenceSweep", "PreferenceUtility", "PromptSweep", "SweepMeans"]

__getattr__ = old_names(__name__)  # the old names of renamed objects (pareto_lightning.renamed)
