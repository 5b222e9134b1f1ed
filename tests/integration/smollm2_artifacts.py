"""A tiny stand-in for SmolLM2-135M-Instruct, written where ``recipes/smollm2`` look for the real one.

Same architecture class (``LlamaForCausalLM``, tied embeddings, grouped-query attention with ``q/k/v/o_proj`` for the
recipes' LoRA), a byte-level BPE tokenizer trained on the recipes' own prompts, and a ChatML chat template like
SmolLM2's, saved by the fetch script's own ``save_folder`` (``recipes/smollm2/fetch.py``). About 60k
parameters: a training step takes well under a second.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]
PROMPTS = REPO / "recipes" / "smollm2" / "prompts"
RECIPE_MODEL = "~/.cache/pareto_lightning/smollm2-135m-instruct"
"""Where the fetch script writes with the default cache root."""
# SmolLM2-Instruct's ChatML layout (without its default system message).
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def recipe_script(name: str) -> ModuleType:
    """The module of ``recipes/smollm2/<name>.py`` (the scripts are files, not a package)."""
    key = f"recipes_smollm2_{name}"
    if key not in sys.modules:  # registered before it runs: its dataclasses look their module up there
        spec = importlib.util.spec_from_file_location(key, REPO / "recipes" / "smollm2" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]


def write_sweep_folder(folder: Path, seen: list[tuple[float, float]], samples: list[dict]) -> Path:
    """A run folder holding one evaluation as ``ParetoEvaluation`` writes it, for the scripts that read it back.

    ``frontier.csv`` lists every weight of ``samples`` in order of first appearance (its mean rewards are
    placeholders: the scripts take the rewards from ``samples.jsonl``), marked seen when it is in ``seen``.
    """
    logs = folder / "lightning_logs" / "version_0"
    logs.mkdir(parents=True)
    weights = list(dict.fromkeys(tuple(s["w"]) for s in samples))
    rows = ["w_1,w_2,seen,r_1,r_2,pu"]
    rows += [f"{w1:.4f},{w2:.4f},{int((w1, w2) in seen)},0.5,0.5,0.1" for w1, w2 in weights]
    (logs / "frontier.csv").write_text("\n".join(rows) + "\n")
    (logs / "samples.jsonl").write_text("\n".join(json.dumps(s) for s in samples) + "\n")
    return folder


def build_tiny_smollm2(home: str | Path) -> Path:
    """Write the tiny model to ``<home>/.cache/pareto_lightning/smollm2-135m-instruct`` (the recipes' ``~`` path)."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    corpus = [
        json.loads(line)["prompt"] for name in ("train", "eval") for line in open(PROMPTS / f"{name}.jsonl")
    ]
    corpus += ["system user assistant Preference weights: simplicity=0.25, technicality=0.75."] * 8
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(vocab_size=500, special_tokens=special, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())  # fmt: skip
    backend.train_from_iterator(corpus, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|im_end|>", pad_token="<|im_end|>",
                                        bos_token="<|im_start|>", chat_template=CHAT_TEMPLATE)  # fmt: skip
    config = LlamaConfig(vocab_size=backend.get_vocab_size(), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=256, tie_word_embeddings=True,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)  # fmt: skip
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = LlamaForCausalLM(config)
    out = Path(home) / RECIPE_MODEL.removeprefix("~/")
    return recipe_script("fetch").save_folder(
        model, tokenizer, out, {"from": "tests/integration/smollm2_artifacts.py"}
    )
