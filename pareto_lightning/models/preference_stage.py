"""Deprecated entry point: the preference stage moved to ``python recipes/smollm2/preference_stage.py`` (same
options); its maths to :mod:`pareto_lightning.losses.distillation`.

``python -m pareto_lightning.models.preference_stage`` still runs it, with a ``DeprecationWarning``, until the next
release.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pareto_lightning.losses.distillation import best_of_pool, mixture_distillation_loss
from pareto_lightning.models._moved import run_moved


def main(argv: Sequence[str] | None = None) -> Any:
    """Warn, then run ``recipes/smollm2/preference_stage.py``'s ``main(argv)``."""
    return run_moved("pareto_lightning.models.preference_stage", "preference_stage", argv)


if __name__ == "__main__":
    main()


__all__ = ["best_of_pool", "main", "mixture_distillation_loss"]
