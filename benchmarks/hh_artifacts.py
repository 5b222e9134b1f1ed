"""Local stand-ins for the Helpful/Harmless setup's models and datasets, written to disk (no network).

``recipes/hh/*.yaml`` name Hub artifacts: ``Qwen/Qwen2-0.5B-Instruct``, ``HuggingFaceH4/ultrafeedback_binarized``,
``PKU-Alignment/BeaverTails`` and the two ``Ray2333/gpt2-large-*-reward_model``. :func:`build_hh_artifacts`
writes folders that load through the same code paths (``from_pretrained`` on a folder, ``load_dataset`` on a
folder with the Hub's ``data/<split>-00000-of-00001.<ext>`` layout) and keep the real schemas:

- policy: a Qwen2 causal LM with a byte-level BPE tokenizer and Qwen2-Instruct's ChatML chat template (the
  preference then goes into a system message), loaded back as ``Qwen2Tokenizer``;
- reward models: two GPT-2 sequence-classification models (one score, ``num_labels=1``), each with its *own*
  byte-level BPE tokenizer of another vocabulary (strings cross between models, token ids never do);
- UltraFeedback: splits ``train_prefs`` and ``test_prefs`` (there is no plain ``train`` split) with the columns
  ``prompt, prompt_id, chosen, rejected, messages, score_chosen, score_rejected``, as Parquet;
- BeaverTails: splits ``30k_train`` and ``30k_test`` with ``prompt, response, category, is_safe``, as JSON lines.

Two scales (``scale=``):

- ``"tiny"`` (tests, about 1 MB, under a second): a 31k-parameter Qwen2 and 1-layer GPT-2s, vocabularies of a few
  hundred tokens trained on the lexicon task's words;
- ``"real"`` (``benchmarks/gpu_smoke.sh``): randomly initialized models of the real configurations, Qwen2-0.5B
  (494.0M parameters, 24 layers, hidden 896, 14 query / 2 key-value heads, vocabulary 151,936, tied embeddings)
  and GPT-2-large (774.0M, 36 layers, hidden 1280, vocabulary 50,257), saved in bfloat16 as the Hub stores
  Qwen2 (about 4 GB in all). Their tokenizers have the real vocabulary sizes too: byte-level BPE vocabularies of
  all byte pairs and then byte triples (:func:`_full_size_byte_bpe`), so every id a random policy samples decodes
  to text (two or three bytes) and the reward models read texts as long as a real policy's.

Command line: ``python benchmarks/hh_artifacts.py OUT_DIR [--scale tiny|real]``.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import inspect
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

HUB_POLICY = "Qwen/Qwen2-0.5B-Instruct"
HUB_HELPFUL_RM = "Ray2333/gpt2-large-helpful-reward_model"
HUB_HARMLESS_RM = "Ray2333/gpt2-large-harmless-reward_model"
HUB_ULTRAFEEDBACK = "HuggingFaceH4/ultrafeedback_binarized"
HUB_BEAVERTAILS = "PKU-Alignment/BeaverTails"

# Qwen2-Instruct's ChatML layout (without its default system message).
_CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
_BEAVERTAILS_CATEGORIES = ("animal_abuse", "privacy_violation", "self_harm", "violence")
Scale = Literal["tiny", "real"]

# The Hub configurations of Qwen/Qwen2-0.5B-Instruct and of the GPT-2-large reward models (config.json there).
_QWEN2_05B = dict(vocab_size=151936, hidden_size=896, num_hidden_layers=24, num_attention_heads=14,
                  num_key_value_heads=2, intermediate_size=4864, max_position_embeddings=32768,
                  rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True)  # fmt: skip
_QWEN2_TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                   intermediate_size=64, max_position_embeddings=256, tie_word_embeddings=True)  # fmt: skip
_GPT2_LARGE = dict(vocab_size=50257, n_positions=1024, n_layer=36, n_embd=1280, n_head=20)
_GPT2_TINY = dict(n_positions=128, n_layer=1, n_embd=16, n_head=2)


@dataclass(frozen=True)
class HHArtifacts:
    """Folders written by :func:`build_hh_artifacts` under ``root``."""

    root: Path

    @property
    def policy(self) -> Path:
        return self.root / "policy"

    @property
    def helpful_rm(self) -> Path:
        return self.root / "helpful_rm"

    @property
    def harmless_rm(self) -> Path:
        return self.root / "harmless_rm"

    @property
    def ultrafeedback(self) -> Path:
        return self.root / "ultrafeedback_binarized"

    @property
    def beavertails(self) -> Path:
        return self.root / "BeaverTails"

    def overrides(self, recipe: str | Path) -> list[str]:
        """Command-line overrides that point ``recipe`` (a ``recipes/hh`` file) at these folders instead of the Hub.

        Lists cannot be indexed on the command line, so the reward functions are given again as a whole list:
        the recipe's own entries with ``name_or_path`` replaced (helpful first, then harmless).
        """
        from pareto_lightning.cli import printed_config

        config = printed_config(["fit", "--config", str(recipe)])  # the recipe with its base
        functions = config["model"]["init_args"]["reward"]["init_args"]["functions"]
        for function, path in zip(functions, (self.helpful_rm, self.harmless_rm), strict=True):
            # only what the recipe sets: defaults given back on the command line do not always read the same
            # (a null as "None", a template's leading newlines dropped)
            module, _, name = function["class_path"].rpartition(".")
            defaults = inspect.signature(getattr(importlib.import_module(module), name)).parameters
            function["init_args"] = {k: v for k, v in function["init_args"].items()
                                     if k not in defaults or v != defaults[k].default}  # fmt: skip
            function["init_args"]["name_or_path"] = str(path)
        policy, data = "--model.init_args.policy.init_args", "--data.init_args"
        return [
            f"{policy}.model={self.policy}",
            f"{policy}.tokenizer={self.policy}",
            f"--model.init_args.reward.init_args.functions={json.dumps(functions)}",
            f"{data}.train_prompts.init_args.path={self.ultrafeedback}",
            f"{data}.eval_prompts.init_args.path={self.beavertails}",
        ]


def _prompts(n: int, seed: int) -> list[str]:
    from pareto_lightning.tasks import LexiconPrompts

    return LexiconPrompts(n, seed)()


def _ultrafeedback_rows(prompts: list[str]) -> list[dict]:
    rows = []
    for i, prompt in enumerate(prompts):
        chosen = [
            {"content": prompt, "role": "user"},
            {"content": "a clear and helpful answer", "role": "assistant"},
        ]
        rejected = [{"content": prompt, "role": "user"}, {"content": "no", "role": "assistant"}]
        rows.append({
            "prompt": prompt, "prompt_id": hashlib.sha256(prompt.encode()).hexdigest(), "chosen": chosen,
            "rejected": rejected, "messages": chosen, "score_chosen": 8.0 + (i % 3) / 2, "score_rejected": 3.0,
        })  # fmt: skip
    return rows


def _beavertails_rows(prompts: list[str]) -> list[dict]:
    rows = []
    for i, prompt in enumerate(prompts):
        unsafe = i % 3 == 0
        category = {
            c: unsafe and j == i % len(_BEAVERTAILS_CATEGORIES) for j, c in enumerate(_BEAVERTAILS_CATEGORIES)
        }
        rows.append({"prompt": prompt, "response": "a calm and careful reply", "category": category,
                     "is_safe": not unsafe})  # fmt: skip
    return rows


def _write_parquet(rows: list[dict], path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)


def _write_jsonl(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")


def _byte_level_bpe(corpus: list[str], special_tokens: list[str], vocab_size: int):
    """A byte-level BPE tokenizer trained on ``corpus`` (milliseconds): the kind Qwen2 and GPT-2 ship, so the
    model-specific tokenizer classes that ``AutoTokenizer`` picks from ``config.json`` load it unchanged."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special_tokens, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())  # fmt: skip
    tok.train_from_iterator(corpus, trainer)
    return tok


def _full_size_byte_bpe(special_tokens: list[str], vocab_size: int):
    """A byte-level BPE tokenizer of exactly ``vocab_size`` tokens: the specials, the 256 byte symbols, then
    merges of every byte pair and after them byte triples (``ab + c``), in a fixed order.

    Training cannot reach a real model's vocabulary size on a small corpus; this construction does, in about a
    second, and every id in ``[0, vocab_size)`` decodes to text.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {t: i for i, t in enumerate(special_tokens + alphabet)}
    merges = []
    pairs = itertools.product(alphabet, alphabet)
    triples = ((a + b, c) for a, b, c in itertools.product(alphabet, alphabet, alphabet))
    for left, right in itertools.chain(pairs, triples):
        if len(vocab) >= vocab_size:
            break
        vocab[left + right] = len(vocab)
        merges.append((left, right))
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return tok


def _tokenizer_backend(
    scale: Scale, corpus: list[str], special_tokens: list[str], tiny_size: int, real_size: int
):
    if scale == "real":
        return _full_size_byte_bpe(special_tokens, real_size)
    return _byte_level_bpe(corpus, special_tokens, tiny_size)


def _corpus() -> list[str]:
    from pareto_lightning.tasks import VOCABULARY

    words = " ".join(w for w in VOCABULARY if not w.startswith("<"))
    template = (
        "Human: Assistant: system user assistant Preference weights: helpfulness=0.25, harmlessness=0.75."
    )
    return _prompts(256, 5) + [words, template] * 8


def _save(model, tokenizer, directory: Path, scale: Scale) -> None:
    import torch

    if scale == "real":  # half the disk and the write time; the recipes load in float32 (an exact upcast)
        model = model.to(torch.bfloat16)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)


def _policy(directory: Path, corpus: list[str], scale: Scale) -> None:
    import torch
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    backend = _tokenizer_backend(scale, corpus, specials, tiny_size=400, real_size=_QWEN2_05B["vocab_size"])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                        chat_template=_CHAT_TEMPLATE)  # fmt: skip
    sizes = _QWEN2_05B if scale == "real" else {**_QWEN2_TINY, "vocab_size": backend.get_vocab_size()}
    config = Qwen2Config(**sizes, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = Qwen2ForCausalLM(config)
    _save(model, tokenizer, directory, scale)


def _reward_model(directory: Path, corpus: list[str], seed: int, scale: Scale) -> None:
    import torch
    from transformers import GPT2Config, GPT2ForSequenceClassification, GPT2TokenizerFast

    # Its own vocabulary (another size than the policy's), so token ids never mean the same in both models.
    eos = "<|endoftext|>"
    backend = _tokenizer_backend(scale, corpus, [eos], tiny_size=350, real_size=_GPT2_LARGE["vocab_size"])
    tokenizer = GPT2TokenizerFast(tokenizer_object=backend, eos_token=eos, bos_token=eos, unk_token=eos)
    sizes = _GPT2_LARGE if scale == "real" else {**_GPT2_TINY, "vocab_size": backend.get_vocab_size()}
    config = GPT2Config(**sizes, num_labels=1, eos_token_id=0, bos_token_id=0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GPT2ForSequenceClassification(config)
    _save(model, tokenizer, directory, scale)


def build_hh_artifacts(root: str | Path, scale: Scale = "tiny") -> HHArtifacts:
    """Write the policy, reward models and datasets under ``root``.

    ``scale="tiny"``: about 1 MB, well under a second. ``scale="real"``: the real configurations with random
    weights, about 4 GB and a minute or two of CPU time.
    """
    if scale not in ("tiny", "real"):
        raise ValueError(f"`scale` must be 'tiny' or 'real'; got {scale!r}.")
    art = HHArtifacts(Path(root))
    corpus = _corpus()
    _policy(art.policy, corpus, scale)
    _reward_model(art.helpful_rm, corpus, seed=1, scale=scale)
    _reward_model(art.harmless_rm, corpus, seed=2, scale=scale)
    uf = art.ultrafeedback / "data"
    _write_parquet(_ultrafeedback_rows(_prompts(64, 0)), uf / "train_prefs-00000-of-00001.parquet")
    _write_parquet(_ultrafeedback_rows(_prompts(8, 1)), uf / "test_prefs-00000-of-00001.parquet")
    bt = art.beavertails / "data"
    _write_jsonl(_beavertails_rows(_prompts(16, 2)), bt / "30k_train-00000-of-00001.jsonl")
    _write_jsonl(_beavertails_rows(_prompts(8, 3)), bt / "30k_test-00000-of-00001.jsonl")
    return art


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write local stand-ins of the Helpful/Harmless artifacts.")
    parser.add_argument("out", help="folder to write (policy/, helpful_rm/, harmless_rm/, datasets)")
    parser.add_argument("--scale", choices=["tiny", "real"], default="real")
    args = parser.parse_args(argv)
    build_hh_artifacts(args.out, args.scale)
    print(f"wrote the {args.scale} Helpful/Harmless artifacts to {args.out}")


if __name__ == "__main__":
    main()
