"""Tiny models and policies for the generation-backend tests (built from configs, no network)."""

from __future__ import annotations

import torch
from torch import nn
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

from pareto_lightning.generation import (
    ContinuousBatchingGeneration,
    GenerationBackend,
    HFGeneration,
    StaticCacheGeneration,
)
from pareto_lightning.policy import PreferencePolicy
from pareto_lightning.tasks import VOCABULARY, LexiconTokenizer

PROMPTS = ["write a note about the river", "hi", "tell me about the city and the sea"]
WEIGHTS = torch.tensor([[0.37, 0.63], [1.0, 0.0], [0.5, 0.5]])
PAD, EOS = VOCABULARY.index("<pad>"), VOCABULARY.index("<eos>")


def backends() -> dict[str, GenerationBackend]:
    """One of each backend; the compiled one uses ``aot_eager`` (parameters become graph inputs exactly as with
    inductor, and it compiles in seconds on a CPU)."""
    return {
        "hf": HFGeneration(),
        "static": StaticCacheGeneration(compile=False),
        "static_compiled": StaticCacheGeneration(compile_backend="aot_eager", compile_mode="default"),
        "continuous": ContinuousBatchingGeneration(page_size=16),
    }


BACKEND_NAMES = list(backends())


def tiny_llama(seed: int = 0) -> LlamaForCausalLM:
    """A random Llama over the lexicon vocabulary (hidden 32, 2 layers, grouped-query attention)."""
    config = LlamaConfig(
        vocab_size=len(VOCABULARY), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256, pad_token_id=PAD,
        eos_token_id=EOS, bos_token_id=EOS, tie_word_embeddings=False,
    )  # fmt: skip
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return LlamaForCausalLM(config)


def fixed_distribution_model(logits: torch.Tensor) -> Qwen2ForCausalLM:
    """A Qwen2 whose next-token logits are ``logits [V]`` whatever the context: a zero output weight plus a bias."""
    config = Qwen2Config(
        vocab_size=len(logits), hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1, max_position_embeddings=256, pad_token_id=PAD, eos_token_id=EOS,
        tie_word_embeddings=False,
    )  # fmt: skip
    model = Qwen2ForCausalLM(config)
    head = nn.Linear(config.hidden_size, len(logits), bias=True)
    with torch.no_grad():
        head.weight.zero_()
        head.bias.copy_(logits)
    model.lm_head = head
    return model


def make_policy(model: nn.Module, backend: GenerationBackend, **kwargs) -> PreferencePolicy:
    kwargs.setdefault("max_new_tokens", 12)
    kwargs.setdefault("temperature", 1.0)
    return PreferencePolicy(model, LexiconTokenizer(), generation=backend, **kwargs)


COMPILES: list[int] = []
"""One entry per graph the ``counting`` compile backend has compiled (cleared by the tests that read it)."""


def _counting_backend(graph_module, example_inputs):
    COMPILES.append(len(example_inputs))
    return graph_module.forward


def register_counting_backend() -> str:
    """Register (once) a ``torch.compile`` backend named ``counting`` that runs graphs eagerly and counts them."""
    if "counting" not in torch._dynamo.list_backends(exclude_tags=()):
        torch._dynamo.register_backend(_counting_backend, name="counting")
    return "counting"
