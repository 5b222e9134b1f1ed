"""Scalarizations of a reward vector under a preference (pure functions and pluggable modules)."""

from pareto_lightning.renamed import old_names
from pareto_lightning.scalarization import functional
from pareto_lightning.scalarization.modules import (
    Scalarizer,
    SmoothTchebycheff,
    SteeringBonus,
    Tchebycheff,
    WeightedSum,
)

__all__ = ["WeightedSum", "Scalarizer", "SmoothTchebycheff", "SteeringBonus", "Tchebycheff", "functional"]

__getattr__ = old_names(__name__)  # the old names of renamed objects (pareto_lightning.renamed)
