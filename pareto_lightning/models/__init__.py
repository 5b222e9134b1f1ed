"""Pretrained models onto a machine without the Hugging Face Hub: ``python -m pareto_lightning.models.smollm2``."""

from pareto_lightning.models.gguf import ConvertedModel, convert_gguf, load_gguf, save_folder

__all__ = ["ConvertedModel", "convert_gguf", "load_gguf", "save_folder"]
