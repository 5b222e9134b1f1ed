"""The alignment algorithms as LightningModules (orchestration only; the maths is in ``losses``)."""

from pareto_lightning.algorithms.base import PreferenceAlignmentModule
from pareto_lightning.algorithms.dpo import MOODPOModule
from pareto_lightning.algorithms.grpo import GRPOModule

__all__ = ["GRPOModule", "MOODPOModule", "PreferenceAlignmentModule"]
