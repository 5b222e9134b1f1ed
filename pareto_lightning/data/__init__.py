"""Prompt sources and the preference-conditioned data module."""

from pareto_lightning.data.datamodule import PreferencePromptDataModule
from pareto_lightning.data.sources import HFPrompts, ListPrompts, PromptSource

__all__ = ["HFPrompts", "ListPrompts", "PreferencePromptDataModule", "PromptSource"]
