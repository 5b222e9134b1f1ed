"""Scalarizations of a reward vector under a preference (pure functions and pluggable modules)."""

from pareto_lightning.scalarization import functional
from pareto_lightning.scalarization.modules import (
    LinearScalarization,
    Scalarizer,
    SmoothTchebycheff,
    Tchebycheff,
)

__all__ = ["LinearScalarization", "Scalarizer", "SmoothTchebycheff", "Tchebycheff", "functional"]
