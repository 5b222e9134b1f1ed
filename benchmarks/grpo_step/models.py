"""The models of the grid, each written (or linked) once to a folder that every side loads from.

* ``tiny``: the built-in ``LexiconLM(seed=0)``, a Qwen2 with hidden 64, 2 layers, 4 heads (2 key/value
  heads), MLP 128, tied embeddings over the 91-token lexicon vocabulary: 80k parameters.
* ``smol135m``: a randomly initialized Llama with SmolLM2-135M's configuration: hidden 576, 30 layers,
  9 heads (3 key/value heads, head size 64), MLP 1536, RMSNorm epsilon 1e-5, rotary base 100000, and the
  full 49152-token vocabulary with tied embeddings (134.5M parameters), so the output layer and the
  log-softmax normalizer cost what they cost in the real model. Random weights are enough for timing.
  Its tokenizer is the lexicon tokenizer with the vocabulary padded to 49152 entries by unused words
  (``x91`` ... ``x49151``): prompts tokenize exactly as for the tiny model, and any sampled id decodes
  to a word (which no reward counts). With random weights the end-of-sequence token has a probability
  of about 1/49152 per token, so "free" completions of this model almost always run to the limit; the
  free cells then time the same work as the forced ones, minus the ``min_new_tokens`` logits processor.
* ``smollm2``: the real SmolLM2-135M-Instruct, as ``recipes/smollm2/`` trains it: the folder written by
  ``python recipes/smollm2/fetch.py`` (linked, not copied), its own tokenizer and chat template,
  and on every side the recipes' LoRA adapter (r 8 on ``q/k/v/o_proj``; the reference is the base with the
  adapter disabled, no second copy). Its completions can end early, so its free cells differ from forced.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import torch
from tokenizers import Tokenizer, models
from transformers import LlamaConfig, LlamaForCausalLM

from pareto_lightning.loading import cache_root
from pareto_lightning.tasks import VOCABULARY, LexiconLM, LexiconTokenizer, build_backend_tokenizer

SMOL_VOCAB = 49152


def save_tiny(folder: str) -> None:
    """Write ``LexiconLM(seed=0)`` and the lexicon tokenizer to ``folder`` (a plain Qwen2 checkpoint)."""
    LexiconLM(seed=0).save_pretrained(folder)
    LexiconTokenizer().save_pretrained(folder)


def padded_tokenizer(vocab_size: int) -> LexiconTokenizer:
    """The lexicon tokenizer with its vocabulary padded to ``vocab_size`` entries by unused words.

    The first ``len(VOCABULARY)`` ids and the splitting rules are those of the lexicon tokenizer.

    Args:
        vocab_size: total number of tokens, at least the lexicon's 91.

    Returns:
        A ``LexiconTokenizer`` over the padded vocabulary.

    Example:
        >>> tok, ids = padded_tokenizer(100), LexiconTokenizer()("safe and kind")["input_ids"]
        >>> len(tok), tok.decode([95]), tok("safe and kind")["input_ids"] == ids
        (100, 'x95', True)
    """
    if vocab_size < len(VOCABULARY):
        raise ValueError(f"`vocab_size` must be >= {len(VOCABULARY)}; got {vocab_size}.")
    base = build_backend_tokenizer()
    words = {w: i for i, w in enumerate(VOCABULARY)} | {
        f"x{i}": i for i in range(len(VOCABULARY), vocab_size)
    }
    tok = Tokenizer(models.WordLevel(words, unk_token="<unk>"))
    tok.pre_tokenizer = base.pre_tokenizer
    return LexiconTokenizer(tokenizer_object=tok)


def smol135m_config() -> LlamaConfig:
    """SmolLM2-135M's architecture, with the lexicon tokenizer's special-token ids.

    Example:
        >>> c = smol135m_config()
        >>> c.hidden_size, c.num_hidden_layers, c.num_attention_heads, c.num_key_value_heads, c.vocab_size
        (576, 30, 9, 3, 49152)
    """
    return LlamaConfig(
        vocab_size=SMOL_VOCAB, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
        num_attention_heads=9, num_key_value_heads=3, hidden_act="silu", max_position_embeddings=2048,
        rms_norm_eps=1e-5, rope_theta=100000.0, tie_word_embeddings=True, initializer_range=0.041666666666666664,
        pad_token_id=VOCABULARY.index("<pad>"), eos_token_id=VOCABULARY.index("<eos>"),
        bos_token_id=VOCABULARY.index("<eos>"),
    )  # fmt: skip


def save_smol135m(folder: str) -> None:
    """Write a seeded random ``LlamaForCausalLM`` of :func:`smol135m_config` and its padded tokenizer."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = LlamaForCausalLM(smol135m_config())
    model.save_pretrained(folder)
    padded_tokenizer(SMOL_VOCAB).save_pretrained(folder)


def link_smollm2(folder: str) -> None:
    """Link ``folder`` to the SmolLM2-135M-Instruct folder the recipes load, or stop with the command that
    writes it."""
    source = os.path.join(cache_root(), "smollm2-135m-instruct")
    if not os.path.isdir(source):
        raise SystemExit(
            f"{source} does not exist; write it first: python recipes/smollm2/fetch.py"
        )
    os.symlink(source, folder)


MODELS: dict[str, tuple[str, Callable[[str], None]]] = {
    "tiny": ("tiny Qwen2 h64/L2, vocab 91 (80k parameters)", save_tiny),
    "smol135m": ("random Llama of SmolLM2-135M's config, vocab 49152 (134.5M parameters)", save_smol135m),
    "smollm2": (
        "SmolLM2-135M-Instruct, LoRA r 8 on q/k/v/o_proj (921,600 trainable parameters)",
        link_smollm2,
    ),
}
"""Model key -> (description, function writing it to a folder)."""
LORA_MODELS = frozenset({"smollm2"})
"""The models every side trains through a LoRA adapter (:func:`~.workload.lora_config`)."""


def prepare(names: list[str], root: str) -> dict[str, str]:
    """Write each named model to its own folder under ``root``; returns name -> folder.

    Raises:
        ValueError: an unknown model name.
    """
    unknown = sorted(set(names) - set(MODELS))
    if unknown:
        raise ValueError(f"`--models` takes {sorted(MODELS)}; got {unknown}.")
    folders = {}
    for name in names:
        folders[name] = os.path.join(root, name)
        MODELS[name][1](folders[name])
    return folders
