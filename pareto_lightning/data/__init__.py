"""Prompt sources, the preference-conditioned data module, and the contract the other parts read it through."""

from pareto_lightning.data.contract import PreferenceData, PreferenceSchedule, preference_data
from pareto_lightning.data.datamodule import PreferencePromptDataModule
from pareto_lightning.data.sources import HFPrompts, ListPrompts, PromptSource

__all__ = [
    "HFPrompts",
    "ListPrompts",
    "PreferenceData",
    "PreferencePromptDataModule",
    "PreferenceSchedule",
    "PromptSource",
    "preference_data",
]
