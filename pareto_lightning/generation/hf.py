"""The default backend: ``transformers``' ``model.generate`` with its dynamic KV cache, no compilation."""

from __future__ import annotations

from torch import Tensor, nn
from transformers import LogitsProcessorList, PreTrainedTokenizerBase

from pareto_lightning.generation.base import GenerationBackend, SamplingSettings


class HFGeneration(GenerationBackend):
    """``model.generate`` as it comes: a dynamic KV cache that grows by one column per token, eager forwards.

    It runs everywhere the model runs (CPU, CUDA, FSDP2 with or without gathering the weights, LoRA) and every
    logits processor applies. Each decode step is one eager forward, so on a GPU a small model is bound by
    Python and kernel launches rather than by memory bandwidth; see :class:`StaticCacheGeneration`.

    Example:
        >>> import torch
        >>> from pareto_lightning.policy import PreferencePolicy
        >>> from pareto_lightning.tasks import LexiconLM, LexiconTokenizer
        >>> policy = PreferencePolicy(LexiconLM(), LexiconTokenizer(), max_new_tokens=4, generation=HFGeneration())
        >>> policy.generate(["write a note"], torch.tensor([[0.5, 0.5]]), 2).completion_ids.shape[0]
        2
    """

    def generate(
        self,
        model: nn.Module,
        tokenizer: PreTrainedTokenizerBase,
        prompt_ids: Tensor,
        prompt_mask: Tensor,
        *,
        max_new_tokens: int,
        sampling: SamplingSettings,
        logits_processor: LogitsProcessorList,
        sharded: bool = False,
        synced_gpus: bool = False,
    ) -> Tensor:
        out = model.generate(
            input_ids=prompt_ids,
            attention_mask=prompt_mask,
            max_new_tokens=max_new_tokens,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            synced_gpus=synced_gpus,
            logits_processor=logits_processor,
            **sampling.generate_kwargs(),
        )
        return out[:, prompt_ids.shape[1] :]  # [N, T] the new tokens


__all__ = ["HFGeneration"]
