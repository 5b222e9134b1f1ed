"""The parts of the built-in lexicon task that a run is configured with: model, rewards and prompts.

The policy completes a prompt with words; objective ``k`` rewards the share of words from lexicon ``k``:
``r_k = (count_k / L) ** kappa`` for completions of ``L`` words. With ``kappa > 1`` the achievable front is
non-convex, so linear scalarization can only reach its corners while smooth Tchebycheff reaches every point
(paper section 2.5); :class:`~pareto_lightning.tasks.LexiconTask` knows the exact front.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import torch
from torch import Tensor
from transformers import Qwen2Config, Qwen2ForCausalLM

from pareto_lightning.tasks.number_embedding import NumberEmbedding
from pareto_lightning.tasks.vocabulary import (
    DIGITS,
    EOS_TOKEN,
    LEXICONS,
    OBJECTIVE_NAMES,
    PAD_TOKEN,
    PROMPT_ADJECTIVES,
    PROMPT_KINDS,
    PROMPT_TOPICS,
    PROMPT_VERBS,
    VOCABULARY,
)


def check_task_arguments(completion_words: int, kappa: float, prefix: str = "") -> list[str]:
    """Problems with the shape of the reward (``[]`` when fine); shared by the reward and the task.

    Example:
        >>> check_task_arguments(16, 1.5), check_task_arguments(0, 1.5)
        ([], ['`completion_words` must be an integer >= 1; got 0.'])
    """
    problems = []
    if isinstance(completion_words, bool) or not isinstance(completion_words, int) or completion_words < 1:
        problems.append(f"`{prefix}completion_words` must be an integer >= 1; got {completion_words!r}.")
    if isinstance(kappa, bool) or not isinstance(kappa, (int, float)) or not kappa > 0:
        problems.append(f"`{prefix}kappa` must be a number > 0 (1 gives a linear front); got {kappa!r}.")
    return problems


class LexiconLM(Qwen2ForCausalLM):
    """A tiny randomly initialized Qwen2 causal LM over the lexicon vocabulary.

    With the defaults it has 80,128 parameters (91 x 64 tied embeddings, two layers of 37,120, a final norm of
    64) and samples a 16-word completion in milliseconds on one CPU core. Without ``config`` the configuration
    is built from the vocabulary (``<pad>``/``<eos>`` ids, tied input and output embeddings) and the weights
    are initialized from ``seed`` under a forked RNG, so the global random state is left untouched.
    ``save_pretrained`` writes a plain Qwen2 checkpoint that ``AutoModelForCausalLM.from_pretrained`` loads as
    ``Qwen2ForCausalLM``.

    Args:
        config: a ready configuration (as ``from_pretrained`` passes); the size arguments are then ignored.
        hidden_size: model width.
        num_layers: number of decoder layers.
        num_heads: attention heads (must divide ``hidden_size``).
        num_kv_heads: key/value heads (must divide ``num_heads``).
        intermediate_size: MLP width.
        max_position_embeddings: longest sequence (prompt plus completion) the model is meant for.
        seed: seed of the weight initialization; None (the default) follows the global seed
            (``torch.initial_seed()``, which ``seed_everything`` and ``--seed_everything`` set), so a run's seed
            changes the model's initialization.
        number_embedding: read numbers as values (:class:`~pareto_lightning.tasks.number_embedding.NumberEmbedding`,
            xVal-style): the tokens of ``0.95`` are embedded as ``number + 0.95 * scale``, so an unseen weight
            lies between the training weights in the model's input space. Stored in the config
            (``config.number_embedding``); such a checkpoint reloads with ``LexiconLM.from_pretrained`` (a
            plain ``Qwen2ForCausalLM`` would ignore the two number vectors).

    Example:
        >>> model = LexiconLM(seed=0)
        >>> sum(p.numel() for p in model.parameters())
        80128
        >>> model.config.vocab_size, model.config.eos_token_id, model.config.tie_word_embeddings
        (91, 2, True)
        >>> numeric = LexiconLM(seed=0, number_embedding=True)  # two more [64] vectors, the output stays tied
        >>> sum(p.numel() for p in numeric.parameters()), numeric.lm_head.weight is numeric.model.embed_tokens.weight
        (80256, True)
    """

    def __init__(
        self,
        config: Qwen2Config | None = None,
        *,
        hidden_size: int = 64,
        num_layers: int = 2,
        num_heads: int = 4,
        num_kv_heads: int = 2,
        intermediate_size: int = 128,
        max_position_embeddings: int = 128,
        seed: int | None = None,
        number_embedding: bool = False,
    ) -> None:
        seed = torch.initial_seed() % 2**63 if seed is None else seed
        if config is None:
            config = self._build_config(
                hidden_size, num_layers, num_heads, num_kv_heads, intermediate_size, max_position_embeddings
            )
            config.number_embedding = bool(number_embedding)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            super().__init__(config)
            if getattr(config, "number_embedding", False):
                self._read_numbers_as_values()

    def _read_numbers_as_values(self) -> None:
        old = self.model.embed_tokens
        new = NumberEmbedding(old.num_embeddings, old.embedding_dim, [VOCABULARY.index(d) for d in DIGITS],
                              VOCABULARY.index("."), padding_idx=old.padding_idx)  # fmt: skip
        new.weight = old.weight  # the same Parameter: the output layer stays tied to it
        new.reset_number_parameters(self.config.initializer_range)
        self.model.embed_tokens = new

    def save_pretrained(self, save_directory, *args, **kwargs):
        """Save as a plain ``Qwen2ForCausalLM`` checkpoint (``architectures`` names the transformers class), so any
        loader, including ones that rebuild a model from ``config.architectures``, reads it without this package.
        With ``number_embedding`` the checkpoint holds two more vectors that only ``LexiconLM.from_pretrained``
        reads; this package's loaders refuse to load it as a plain Qwen2 (``loading.check_number_embedding``).
        """
        super().save_pretrained(save_directory, *args, **kwargs)
        import json
        import os

        path = os.path.join(save_directory, "config.json")
        with open(path) as fh:
            config = json.load(fh)
        config["architectures"] = ["Qwen2ForCausalLM"]
        with open(path, "w") as fh:
            json.dump(config, fh, indent=2, sort_keys=True)

    @staticmethod
    def _build_config(
        hidden_size: int,
        num_layers: int,
        num_heads: int,
        num_kv_heads: int,
        intermediate_size: int,
        max_position_embeddings: int,
    ) -> Qwen2Config:
        sizes = {"hidden_size": hidden_size, "num_layers": num_layers, "num_heads": num_heads,
                 "num_kv_heads": num_kv_heads, "intermediate_size": intermediate_size,
                 "max_position_embeddings": max_position_embeddings}  # fmt: skip
        problems = [
            f"`{k}` must be an integer >= 1; got {v!r}." for k, v in sizes.items() if not _positive_int(v)
        ]
        if not problems and hidden_size % num_heads:
            problems.append(f"`hidden_size` ({hidden_size}) must be a multiple of `num_heads` ({num_heads}).")
        elif not problems and (hidden_size // num_heads) % 2:
            problems.append(
                f"`hidden_size / num_heads` must be even (rotary embeddings); got {hidden_size}/{num_heads}."
            )
        if not problems and num_heads % num_kv_heads:
            problems.append(
                f"`num_heads` ({num_heads}) must be a multiple of `num_kv_heads` ({num_kv_heads})."
            )
        if problems:
            raise ValueError("invalid LexiconLM size (model.init_args.policy.init_args.model.init_args):\n  "
                             + "\n  ".join(problems))  # fmt: skip
        eos_id = VOCABULARY.index(EOS_TOKEN)
        return Qwen2Config(
            vocab_size=len(VOCABULARY),
            hidden_size=hidden_size,
            intermediate_size=intermediate_size,
            num_hidden_layers=num_layers,
            num_attention_heads=num_heads,
            num_key_value_heads=num_kv_heads,
            max_position_embeddings=max_position_embeddings,
            tie_word_embeddings=True,
            pad_token_id=VOCABULARY.index(PAD_TOKEN),
            eos_token_id=eos_id,
            bos_token_id=eos_id,  # no beginning-of-sequence token: the prompts are plain text
        )


def _positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def resolve_objective(objective: int | str, key: str = "objective") -> int:
    """The lexicon index of an objective given as ``0..2`` or as a name.

    Example:
        >>> resolve_objective("harmlessness"), resolve_objective(2)
        (1, 2)
    """
    if isinstance(objective, str) and objective in OBJECTIVE_NAMES:
        return OBJECTIVE_NAMES.index(objective)
    if (
        isinstance(objective, int)
        and not isinstance(objective, bool)
        and 0 <= objective < len(OBJECTIVE_NAMES)
    ):
        return objective
    allowed = ", ".join(repr(n) for n in OBJECTIVE_NAMES)
    raise ValueError(
        f"`{key}` must be one of {allowed} or an index 0..{len(OBJECTIVE_NAMES) - 1}; got {objective!r}."
    )


class LexiconReward:
    """Reward of one objective: ``(count of its lexicon words / completion_words) ** kappa`` in [0, 1].

    Words are the whitespace-separated tokens of the decoded completion (the lexicon tokenizer decodes with
    single spaces); any other word, punctuation or digit counts zero. Only the first ``completion_words`` words
    are read, so a longer completion (``max_new_tokens`` above ``L``) cannot reach beyond the exact front.

    Args:
        objective: ``"helpfulness"``, ``"harmlessness"``, ``"honesty"`` or their index ``0..2``; the name is
            kept as ``objective`` (the :class:`~pareto_lightning.rewards.DeclaresObjective` contract), so a reward
            placed in another objective's slot is refused.
        completion_words: ``L``, the completion length the count is divided by.
        kappa: exponent; ``kappa > 1`` makes the front non-convex.

    Example:
        >>> reward = LexiconReward("helpfulness")
        >>> reward(["p", "p"], ["useful clear " * 2 + "and " * 12, "safe " * 16])  # (4/16)**1.5, 0
        tensor([0.1250, 0.0000])
    """

    def __init__(self, objective: int | str, completion_words: int = 16, kappa: float = 1.5) -> None:
        problems = check_task_arguments(completion_words, kappa)
        if problems:
            raise ValueError("invalid LexiconReward:\n  " + "\n  ".join(problems))
        self.index = resolve_objective(objective)
        self.name = OBJECTIVE_NAMES[self.index]
        self.objective: str | None = self.name  # the objective it scores, checked against its slot
        self.words = frozenset(LEXICONS[self.name])
        self.completion_words, self.kappa = completion_words, float(kappa)

    def count(self, completion: str) -> int:
        """Number of lexicon words among the first ``completion_words`` words of one completion.

        Example:
            >>> LexiconReward(2).count("honest , honest and accurate")
            3
            >>> LexiconReward(0, completion_words=2).count("useful useful useful")
            2
        """
        return sum(word in self.words for word in completion.split()[: self.completion_words])

    def __call__(self, prompts: Sequence[str], completions: Sequence[str]) -> Tensor:
        """Rewards ``[N]`` (float32) of ``N`` completions; the prompts are not used."""
        if len(prompts) != len(completions):
            raise ValueError(
                f"got {len(prompts)} prompts but {len(completions)} completions; one prompt per completion."
            )
        counts = torch.tensor([self.count(c) for c in completions], dtype=torch.float64)  # [N]
        return (counts / self.completion_words).pow(self.kappa).to(torch.float32)

    def __repr__(self) -> str:
        return f"LexiconReward({self.name!r}, completion_words={self.completion_words}, kappa={self.kappa})"


class LexiconPrompts:
    """Deterministic prompts such as ``"write a short note about the river"`` from the prompt words.

    The ``2304`` combinations of verb, adjective, kind and topic are drawn without replacement with ``seed``.

    Args:
        num_prompts: how many prompts (1 to 2304).
        seed: which prompts and in which order.

    Example:
        >>> prompts = LexiconPrompts(num_prompts=3, seed=0)
        >>> len(prompts), prompts.load() == prompts() == prompts.prompts
        (3, True)
        >>> all(p.split()[1] == "a" and p.split()[4:6] == ["about", "the"] for p in prompts())
        True
    """

    def __init__(self, num_prompts: int = 64, seed: int = 0) -> None:
        combos = [(v, a, k, t) for v in PROMPT_VERBS for a in PROMPT_ADJECTIVES for k in PROMPT_KINDS
                  for t in PROMPT_TOPICS]  # fmt: skip
        if not _positive_int(num_prompts) or num_prompts > len(combos):
            raise ValueError(
                f"`num_prompts` must be an integer in [1, {len(combos)}] "
                f"(data.init_args.train_prompts.init_args.num_prompts or eval_prompts); got {num_prompts!r}."
            )
        self.num_prompts, self.seed = num_prompts, seed
        picked = random.Random(seed).sample(combos, num_prompts)
        self.prompts: list[str] = [f"{v} a {a} {k} about the {t}" for v, a, k, t in picked]

    def load(self) -> list[str]:
        """The prompts (a fresh list), the prompt-source interface of the data module.

        Example:
            >>> LexiconPrompts(num_prompts=2, seed=0).load() == LexiconPrompts(num_prompts=2, seed=0).load()
            True
        """
        return list(self.prompts)

    def __call__(self) -> list[str]:
        """The prompts (a fresh list), same as :meth:`load`."""
        return self.load()

    def __len__(self) -> int:
        return len(self.prompts)


__all__ = ["LexiconLM", "LexiconPrompts", "LexiconReward", "check_task_arguments", "resolve_objective"]
