"""The model's own ``generation_config``, and what it would add to the sampling the policy asks for.

``transformers``' ``generate`` fills every setting it is not passed from ``model.generation_config``. A
pretrained model's file can ask for processing beyond temperature and top-p: Qwen2-Instruct's sets
``repetition_penalty: 1.1``. Completions would then be sampled from another distribution than the
``softmax(z / temperature)`` whose log-probs the losses and the KL use, so the policy drops such settings when it
is built (:func:`sampling_only`), and says which.
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn
from transformers import GenerationConfig, PreTrainedTokenizerBase
from transformers.generation.logits_process import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

from pareto_lightning.generation.base import SamplingSettings

_SAMPLING_PROCESSORS = (TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper)
_TOKEN_IDS = ("bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id")


def generation_config_for(
    model: nn.Module, max_new_tokens: int, sampling: SamplingSettings, tokenizer: PreTrainedTokenizerBase
) -> GenerationConfig:
    """The model's own ``generation_config`` with the policy's settings on top, as ``generate`` would merge them.

    Example:
        >>> from pareto_lightning.tasks import LexiconLM, LexiconTokenizer
        >>> config = generation_config_for(LexiconLM(), 4, SamplingSettings(True, 0.9), LexiconTokenizer())
        >>> config.do_sample, config.temperature, config.top_k, config.max_new_tokens
        (True, 0.9, 0, 4)
    """
    config = copy.deepcopy(model.generation_config)
    config.update(max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                  eos_token_id=tokenizer.eos_token_id, **sampling.generate_kwargs())  # fmt: skip
    return config


def unsupported_processing(model: nn.Module, config: GenerationConfig) -> list[str]:
    """Names of the logits processors ``config`` asks for beyond temperature, top-k and top-p.

    Example:
        >>> from transformers import GenerationConfig
        >>> from pareto_lightning.tasks import LexiconLM
        >>> unsupported_processing(LexiconLM(), GenerationConfig(do_sample=True, temperature=0.9, top_k=0))
        []
        >>> unsupported_processing(LexiconLM(), GenerationConfig(repetition_penalty=1.2, min_new_tokens=4))
        ['RepetitionPenaltyLogitsProcessor', 'MinNewTokensLengthLogitsProcessor']
    """
    config = copy.deepcopy(config)
    # `generate` sets the EOS tensor before building the list, and the minimum-length processors need it.
    eos = config.eos_token_id if config.eos_token_id is not None else -1
    config._eos_token_tensor = torch.as_tensor(eos).flatten()
    with warnings.catch_warnings():  # warnings about prompts this list is never used on
        warnings.simplefilter("ignore")
        # transformers' own (private) builder of the list, the one generate_batch calls
        processors = model._get_logits_processor(config, input_ids_seq_length=1)
    return [type(p).__name__ for p in processors if not isinstance(p, _SAMPLING_PROCESSORS)]


def sampling_only(model: nn.Module) -> list[str]:
    """Give ``model`` a generation config that adds nothing to the policy's sampling; return what was dropped.

    The new config keeps only the model's special token ids. The names returned are the logits processors the
    old config asked for beyond temperature, top-k and top-p (empty when it asked for none).

    Example:
        >>> from pareto_lightning.tasks import LexiconLM
        >>> model = LexiconLM()
        >>> model.generation_config.repetition_penalty = 1.1
        >>> sampling_only(model), sampling_only(model)
        (['RepetitionPenaltyLogitsProcessor'], [])
    """
    old = getattr(model, "generation_config", None)
    if old is None:  # not a generating model (nothing to fill generate's settings from)
        return []
    dropped = unsupported_processing(model, old)
    model.generation_config = GenerationConfig(
        **{k: getattr(old, k) for k in _TOKEN_IDS if getattr(old, k, None) is not None}
    )
    return dropped


__all__ = ["generation_config_for", "sampling_only", "unsupported_processing"]
