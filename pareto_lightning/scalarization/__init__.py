"""Scalarizations of a reward vector under a preference (pure functions and pluggable modules)."""

from pareto_lightning.renamed import renamed
from pareto_lightning.scalarization import functional
from pareto_lightning.scalarization.modules import (
    Scalarizer,
    SmoothTchebycheff,
    Tchebycheff,
    WeightedSum,
)

__all__ = ["WeightedSum", "Scalarizer", "SmoothTchebycheff", "Tchebycheff", "functional"]


def __getattr__(name: str) -> object:
    """The old names of renamed classes and functions, with a FutureWarning (`pareto_lightning.renamed`)."""
    return renamed(__name__, name)
