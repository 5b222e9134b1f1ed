"""Deprecated: the SmolLM2 scripts moved to ``recipes/smollm2/`` (``fetch.py``, ``preference_stage.py``) and the
stage's maths to :mod:`pareto_lightning.losses.distillation`. The old ``python -m`` commands warn and run the new
scripts until the next release."""

from pareto_lightning.losses.distillation import best_of_pool, mixture_distillation_loss

__all__ = ["best_of_pool", "mixture_distillation_loss"]
