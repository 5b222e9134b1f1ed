"""Pretrained models onto a machine without the Hugging Face Hub (``python -m pareto_lightning.models.smollm2``), and
the preference stage that teaches one to read ``w`` (``python -m pareto_lightning.models.preference_stage``)."""

from pareto_lightning.models.gguf import ConvertedModel, convert_gguf, load_gguf, save_folder
from pareto_lightning.models.preference_stage import (
    best_of_pool,
    distill,
    mixture_distillation_loss,
    sample_pool,
)

__all__ = [
    "ConvertedModel",
    "best_of_pool",
    "convert_gguf",
    "distill",
    "load_gguf",
    "mixture_distillation_loss",
    "sample_pool",
    "save_folder",
]
