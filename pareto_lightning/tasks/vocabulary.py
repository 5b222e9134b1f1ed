"""The fixed word-level vocabulary of the built-in lexicon task and its tokenizer.

The vocabulary is the same for two and three objectives, so the tokenizer and the model never depend on ``K``:
with two objectives the honesty lexicon is simply neutral. It holds the special tokens, the ten digits as
separate tokens (a preference such as ``0.70`` reaches the model digit by digit, at the two decimals it is
evaluated at), a little punctuation, the words of the conditioning line (``Preference weights: ...``), the
words the prompts are made of, three disjoint lexicons of objective words and a few neutral filler words.
"""

from __future__ import annotations

import json
import os
from typing import Any

from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

PAD_TOKEN, UNK_TOKEN, EOS_TOKEN = "<pad>", "<unk>", "<eos>"
SPECIAL_TOKENS: tuple[str, ...] = (PAD_TOKEN, UNK_TOKEN, EOS_TOKEN)
DIGITS: tuple[str, ...] = tuple("0123456789")
PUNCTUATION: tuple[str, ...] = (".", ",", "=", ":", ";", "?")

OBJECTIVE_NAMES: tuple[str, ...] = ("helpfulness", "harmlessness", "honesty")
"""The objective names, in lexicon order; the first ``K`` are used for ``K`` objectives."""

CONDITIONING_WORDS: tuple[str, ...] = ("Preference", "weights", *OBJECTIVE_NAMES)

PROMPT_VERBS: tuple[str, ...] = ("write", "describe", "explain", "summarize", "discuss", "review")
PROMPT_ADJECTIVES: tuple[str, ...] = ("short", "brief", "simple", "quick")
PROMPT_KINDS: tuple[str, ...] = ("note", "answer", "story", "paragraph", "message", "letter")
PROMPT_TOPICS: tuple[str, ...] = (
    "river", "garden", "city", "ocean", "forest", "mountain", "market", "library",
    "kitchen", "school", "weather", "music", "train", "village", "bridge", "island",
)  # fmt: skip
PROMPT_WORDS: tuple[str, ...] = (
    *PROMPT_VERBS,
    "a",
    *PROMPT_ADJECTIVES,
    *PROMPT_KINDS,
    "about",
    "the",
    *PROMPT_TOPICS,
)

LEXICONS: dict[str, tuple[str, ...]] = {
    "helpfulness": (
        "helpful", "useful", "clear", "practical", "informative", "detailed", "thorough", "constructive",
    ),
    "harmlessness": ("safe", "gentle", "careful", "kind", "harmless", "calm", "respectful", "peaceful"),
    "honesty": ("honest", "truthful", "accurate", "factual", "sincere", "candid", "correct", "transparent"),
}  # fmt: skip
"""Three disjoint lexicons, one per objective: the reward of objective ``k`` counts lexicon ``k``'s words."""

FILLER_WORDS: tuple[str, ...] = ("and", "then", "also", "very", "so", "well", "just", "more")
"""Neutral words that count for no objective."""

VOCABULARY: tuple[str, ...] = (
    *SPECIAL_TOKENS,
    *DIGITS,
    *PUNCTUATION,
    *CONDITIONING_WORDS,
    *PROMPT_WORDS,
    *(word for name in OBJECTIVE_NAMES for word in LEXICONS[name]),
    *FILLER_WORDS,
)
"""Every token, in id order (``<pad>`` is 0, ``<unk>`` 1, ``<eos>`` 2)."""


def build_backend_tokenizer() -> Tokenizer:
    """The ``tokenizers`` word-level tokenizer over :data:`VOCABULARY`.

    Text is split on whitespace (newlines included), every punctuation character is isolated and every digit
    is a token of its own; words outside the vocabulary become ``<unk>``. Without a decoder, decoding joins
    tokens with single spaces.

    Example:
        >>> build_backend_tokenizer().encode("weights: 0.70").tokens
        ['weights', ':', '0', '.', '7', '0']
    """
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(VOCABULARY)}, unk_token=UNK_TOKEN))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.WhitespaceSplit(),
            pre_tokenizers.Punctuation(behavior="isolated"),
            pre_tokenizers.Digits(individual_digits=True),
        ]
    )
    return tok


class LexiconTokenizer(PreTrainedTokenizerFast):
    """The lexicon task's tokenizer: a fast tokenizer over the fixed vocabulary, padding on the left.

    It has no chat template, so the policy writes the preference as a plain-text prefix line. Built with no
    arguments (``class_path: pareto_lightning.tasks.LexiconTokenizer`` in YAML); ``tokenizer_object`` or
    ``tokenizer_file`` (as ``from_pretrained`` passes) are used as given. It saves as a plain
    ``PreTrainedTokenizerFast``, so ``AutoTokenizer.from_pretrained`` reloads it without this package.

    Args:
        **kwargs: passed on to ``PreTrainedTokenizerFast``; the special tokens, ``padding_side="left"`` and
            ``clean_up_tokenization_spaces=False`` are defaults that can be overridden.

    Example:
        >>> tok = LexiconTokenizer()
        >>> ids = tok("Preference weights: helpfulness=0.70.")["input_ids"]
        >>> tok.convert_ids_to_tokens(ids)
        ['Preference', 'weights', ':', 'helpfulness', '=', '0', '.', '7', '0', '.']
        >>> tok.decode(tok("safe and kind")["input_ids"])
        'safe and kind'
        >>> len(tok), tok.pad_token_id, tok.eos_token_id, tok.padding_side
        (91, 0, 2, 'left')
    """

    def __init__(self, **kwargs: Any) -> None:
        if kwargs.get("tokenizer_object") is None and kwargs.get("tokenizer_file") is None:
            kwargs["tokenizer_object"] = build_backend_tokenizer()
        kwargs.setdefault("pad_token", PAD_TOKEN)
        kwargs.setdefault("unk_token", UNK_TOKEN)
        kwargs.setdefault("eos_token", EOS_TOKEN)
        kwargs.setdefault("padding_side", "left")
        # Decoding must give back the words separated by single spaces (the rewards split on whitespace).
        kwargs.setdefault("clean_up_tokenization_spaces", False)
        super().__init__(**kwargs)

    def save_pretrained(
        self, save_directory: str | os.PathLike, *args: Any, **kwargs: Any
    ) -> tuple[str, ...]:
        """Save like ``PreTrainedTokenizerFast``, recorded under that class name.

        ``tokenizer_config.json`` would otherwise name ``LexiconTokenizer``, a class ``AutoTokenizer`` does
        not know; the saved files fully describe the tokenizer, so the generic class reloads it unchanged.

        Example:
            >>> import tempfile, transformers
            >>> d = tempfile.mkdtemp(); _ = LexiconTokenizer().save_pretrained(d)
            >>> transformers.AutoTokenizer.from_pretrained(d).tokenize("kind 0.5")
            ['kind', '0', '.', '5']
        """
        files = super().save_pretrained(save_directory, *args, **kwargs)
        for path in files:
            if str(path).endswith("tokenizer_config.json") and os.path.isfile(path):
                with open(path, encoding="utf-8") as fh:
                    config = json.load(fh)
                config["tokenizer_class"] = "PreTrainedTokenizerFast"
                with open(path, "w", encoding="utf-8") as fh:
                    fh.write(json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
        return files


__all__ = [
    "FILLER_WORDS",
    "LEXICONS",
    "OBJECTIVE_NAMES",
    "VOCABULARY",
    "LexiconTokenizer",
    "build_backend_tokenizer",
]
