"""Metrics of the evaluation sweep: preference-utility shortfall and hypervolume.

``functional`` holds the plain-torch maths; the classes are thin ``torchmetrics.Metric`` wrappers that
accumulate across batches and processes.
"""

from pareto_lightning.metrics.hypervolume import HypervolumeMetric
from pareto_lightning.metrics.preference_utility import PreferenceUtility

__all__ = ["HypervolumeMetric", "PreferenceUtility"]
