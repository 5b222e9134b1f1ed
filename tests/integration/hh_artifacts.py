"""Tiny local stand-ins for the Helpful/Harmless setup's models and datasets, written to disk (no network).

``recipes/hh/*.yaml`` name Hub artifacts: ``Qwen/Qwen2-0.5B-Instruct``, ``HuggingFaceH4/ultrafeedback_binarized``,
``PKU-Alignment/BeaverTails`` and the two ``Ray2333/gpt2-large-*-reward_model``. :func:`build_hh_artifacts`
writes folders that load through the same code paths (``from_pretrained`` on a folder, ``load_dataset`` on a
folder with the Hub's ``data/<split>-00000-of-00001.<ext>`` layout) and keep the real schemas:

- policy: a Qwen2 causal LM (31k parameters) with a byte-level BPE tokenizer and Qwen2-Instruct's ChatML chat
  template (the preference then goes into a system message), loaded back as ``Qwen2Tokenizer``;
- reward models: two GPT-2 sequence-classification models (one score, ``num_labels=1``), each with its *own*
  byte-level BPE tokenizer of another vocabulary (strings cross between models, token ids never do);
- UltraFeedback: splits ``train_prefs`` and ``test_prefs`` (there is no plain ``train`` split) with the columns
  ``prompt, prompt_id, chosen, rejected, messages, score_chosen, score_rejected``, as Parquet;
- BeaverTails: splits ``30k_train`` and ``30k_test`` with ``prompt, response, category, is_safe``, as JSON lines.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

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
        import yaml

        with open(recipe) as fh:
            config = yaml.safe_load(fh)
        functions = config["model"]["init_args"]["reward"]["init_args"]["functions"]
        for function, path in zip(functions, (self.helpful_rm, self.harmless_rm), strict=True):
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


def _corpus() -> list[str]:
    from pareto_lightning.tasks import VOCABULARY

    words = " ".join(w for w in VOCABULARY if not w.startswith("<"))
    template = (
        "Human: Assistant: system user assistant Preference weights: helpfulness=0.25, harmlessness=0.75."
    )
    return _prompts(256, 5) + [words, template] * 8


def _policy(directory: Path, corpus: list[str]) -> None:
    import torch
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    backend = _byte_level_bpe(corpus, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], vocab_size=400)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                        chat_template=_CHAT_TEMPLATE)  # fmt: skip
    config = Qwen2Config(vocab_size=backend.get_vocab_size(), hidden_size=32, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, intermediate_size=64,
                         max_position_embeddings=256, tie_word_embeddings=True,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)  # fmt: skip
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = Qwen2ForCausalLM(config)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)


def _reward_model(directory: Path, corpus: list[str], seed: int) -> None:
    import torch
    from transformers import GPT2Config, GPT2ForSequenceClassification, GPT2TokenizerFast

    # Its own vocabulary (another size than the policy's), so token ids never mean the same in both models.
    backend = _byte_level_bpe(corpus, ["<|endoftext|>"], vocab_size=350)
    eos = "<|endoftext|>"
    tokenizer = GPT2TokenizerFast(tokenizer_object=backend, eos_token=eos, bos_token=eos, unk_token=eos)
    config = GPT2Config(vocab_size=backend.get_vocab_size(), n_positions=128, n_layer=1, n_embd=16, n_head=2,
                        num_labels=1, eos_token_id=0, bos_token_id=0)  # fmt: skip
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GPT2ForSequenceClassification(config)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)


def build_hh_artifacts(root: str | Path) -> HHArtifacts:
    """Write the tiny policy, reward models and datasets under ``root`` (about 1 MB, well under a second)."""
    art = HHArtifacts(Path(root))
    corpus = _corpus()
    _policy(art.policy, corpus)
    _reward_model(art.helpful_rm, corpus, seed=1)
    _reward_model(art.harmless_rm, corpus, seed=2)
    uf = art.ultrafeedback / "data"
    _write_parquet(_ultrafeedback_rows(_prompts(64, 0)), uf / "train_prefs-00000-of-00001.parquet")
    _write_parquet(_ultrafeedback_rows(_prompts(8, 1)), uf / "test_prefs-00000-of-00001.parquet")
    bt = art.beavertails / "data"
    _write_jsonl(_beavertails_rows(_prompts(16, 2)), bt / "30k_train-00000-of-00001.jsonl")
    _write_jsonl(_beavertails_rows(_prompts(8, 3)), bt / "30k_test-00000-of-00001.jsonl")
    return art
