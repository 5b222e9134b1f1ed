"""An "instruct" base for the lexicon task: a short supervised stage that teaches the model to read ``w``.

The paper starts from Qwen2-0.5B-Instruct, a model that already reads the numbers in its system prompt and
follows the answer format. A :class:`~pareto_lightning.tasks.LexiconLM` from random weights knows neither, and
reinforcement learning on one preference at a time collapses before it learns to read the digits of ``w``
(the collapse is absorbing: deterministic outputs give zero-spread groups, hence zero advantages).
:func:`build_instruct_lm` builds the stand-in for the instruct model, a :class:`LexiconInstructLM`: a
``LexiconLM`` trained by teacher forcing on ``prompt + preference line + completion`` where the completion is
``L`` lexicon words whose counts are ``Multinomial(L, w)`` (each word drawn uniformly from its lexicon; in random
order, or grouped by objective with ``grouped_completions``, as the built-in recipes do). So it

- writes the completion format (``L`` objective words, then end of sequence),
- reads every two-decimal ``w`` (the weights are drawn uniformly on the simplex, not from the training grid),
- and steers *linearly* (``E[c_k] = L w_k``), which is not the alignment target: at ``w_1 = 0.7`` it writes
  about 11 helpful words where the smooth-Tchebycheff optimum is 15. Reinforcement learning still has to find
  the optimum, for seen and unseen weights alike.

The stage is deterministic given its arguments and seed, takes seconds on a CPU, and its weights are cached
on disk (:func:`~pareto_lightning.loading.cache_root`: ``PARETO_LIGHTNING_CACHE``, default
``~/.cache/pareto_lightning``), so it runs once per setting.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from pareto_lightning.conditioning import PREFERENCE_TEMPLATE, conditioned_prompt
from pareto_lightning.loading import cache_root
from pareto_lightning.preferences import sample_dirichlet
from pareto_lightning.tasks.lexicon import LexiconLM, LexiconPrompts, resolve_objective
from pareto_lightning.tasks.vocabulary import EOS_TOKEN, LEXICONS, OBJECTIVE_NAMES, LexiconTokenizer

_STAGE_VERSION = 1  # bump when the stage's data or training changes, so old cache entries are not reused
RECIPE_PLAIN_TEMPLATE = "{prompt}\n{preference}\n"
"""The built-in recipes' prompt layout (the preference line right before the completion)."""


def two_decimal_weights(num: int, num_objectives: int, generator: torch.Generator) -> Tensor:
    """``[num, K]`` preferences uniform on the simplex (``Dirichlet(1)``) with two decimals, a tenth of them vertices.

    The first ``K - 1`` entries are rounded to 0.01 and the last takes the rest, so every row sums to 1 exactly
    as it is written into the prompt (rows whose rounded entries overshoot are drawn again).

    Example:
        >>> w = two_decimal_weights(5, 3, torch.Generator().manual_seed(0))
        >>> bool(torch.equal((w * 100).round() / 100, w)), bool(torch.allclose(w.sum(-1), torch.ones(5).double()))
        (True, True)
    """
    rows: list[Tensor] = []
    while sum(len(r) for r in rows) < num:
        w = sample_dirichlet(torch.ones(num_objectives), num, generator)  # [num, K]
        head = (w[:, :-1] * 100).round() / 100  # [num, K-1]
        last = 1.0 - head.sum(-1, keepdim=True)  # [num, 1]
        w = torch.cat([head, (last * 100).round() / 100], -1)
        rows.append(w[(last >= -1e-9).squeeze(-1)].clamp_min(0.0))
    w = torch.cat(rows)[:num]
    # A vertex is the only weight with a digit 1 before the point, and uniform two-decimal draws give it
    # 1 time in ~100: make one row in ten a vertex so the corners are read as reliably as the rest.
    vertex = torch.rand(num, generator=generator) < 0.1  # [num]
    corner = torch.randint(0, num_objectives, (num,), generator=generator)  # [num]
    w[vertex] = torch.nn.functional.one_hot(corner[vertex], num_objectives).to(w)
    return w


def linear_completions(
    weights: Tensor,
    completion_words: int,
    generator: torch.Generator,
    names: Sequence[str],
    grouped: bool = False,
) -> list[str]:
    """One completion per preference: ``L`` words with lexicon counts ``Multinomial(L, w)``.

    The words come in random order, or with ``grouped`` the words of each objective together, in the order of
    ``names`` (so a completion's composition is where it switches from one lexicon to the next).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> c = linear_completions(torch.tensor([[1.0, 0.0]]), 4, g, ["helpfulness", "harmlessness"])[0]
        >>> len(c.split()), all(word in LEXICONS["helpfulness"] for word in c.split())
        (4, True)
        >>> c = linear_completions(torch.tensor([[0.5, 0.5]]), 8, g, ["helpfulness", "harmlessness"], grouped=True)[0]
        >>> [int(word in LEXICONS["harmlessness"]) for word in c.split()]
        [0, 0, 0, 0, 0, 0, 1, 1]
    """
    lexicons = [LEXICONS[OBJECTIVE_NAMES[resolve_objective(n)]] for n in names]
    out = []
    for w in weights.double():
        picks = torch.multinomial(w, completion_words, replacement=True, generator=generator)  # [L]
        if grouped:
            picks = picks.sort().values
        which = torch.randint(0, len(lexicons[0]), (completion_words,), generator=generator)  # [L]
        out.append(" ".join(lexicons[k][j] for k, j in zip(picks.tolist(), which.tolist(), strict=True)))
    return out


class LexiconInstructLM(LexiconLM):
    """A :class:`LexiconLM` that declares the prompt layout it reads; :func:`build_instruct_lm` trains one.

    Building it trains nothing: it is the seed's random initialization (or, given ``config``, the architecture a
    checkpoint is loaded into), plus ``prompt_format``, the layout the supervised stage of
    :func:`build_instruct_lm` trains it on (``objective_names``, ``conditioning_template``,
    ``plain_prompt_template``, ``weight_decimals``). That layout must be the one the policy writes:
    :class:`~pareto_lightning.PreferencePolicy` compares them and refuses a mismatch.

    Args:
        config: a ready configuration (as ``from_pretrained`` passes); the weights then come from the checkpoint.
        objective_names: the objectives, in the order the policy writes them (``K = len(objective_names)``).
        conditioning_template: the policy's preference sentence.
        plain_prompt_template: the policy's prompt layout.
        weight_decimals: decimals the policy writes ``w`` with.
        seed: the initialization; None follows the global seed (``seed_everything``).
        number_embedding: read the weights as values, not digit by digit (see :class:`LexiconLM`).
        hidden_size, num_layers, num_heads, num_kv_heads, intermediate_size, max_position_embeddings: the
            model size, as in :class:`LexiconLM`.

    Example:
        >>> model = LexiconInstructLM(seed=0)
        >>> model.prompt_format["objective_names"], model.prompt_format["plain_prompt_template"]
        (['helpfulness', 'harmlessness'], '{prompt}\\n{preference}\\n')
    """

    def __init__(
        self,
        config: Any = None,
        *,
        objective_names: Sequence[str] = ("helpfulness", "harmlessness"),
        conditioning_template: str = PREFERENCE_TEMPLATE,
        plain_prompt_template: str = RECIPE_PLAIN_TEMPLATE,
        weight_decimals: int = 2,
        seed: int | None = None,
        hidden_size: int = 64,
        num_layers: int = 2,
        num_heads: int = 4,
        num_kv_heads: int = 2,
        intermediate_size: int = 128,
        max_position_embeddings: int = 128,
        number_embedding: bool = False,
    ) -> None:
        problems = _objective_problems(objective_names)
        if problems:
            raise ValueError("invalid LexiconInstructLM configuration:\n  " + "\n  ".join(problems))
        super().__init__(config, seed=seed, number_embedding=number_embedding, hidden_size=hidden_size,
                         num_layers=num_layers, num_heads=num_heads, num_kv_heads=num_kv_heads,
                         intermediate_size=intermediate_size,
                         max_position_embeddings=max_position_embeddings)  # fmt: skip
        self.prompt_format: dict[str, Any] = {
            "objective_names": list(objective_names),
            "conditioning_template": conditioning_template,
            "plain_prompt_template": plain_prompt_template,
            "weight_decimals": weight_decimals,
        }


_KEY = "model.init_args.policy.init_args.model.init_args"


def _objective_problems(objective_names: Sequence[str]) -> list[str]:
    problems = []
    if len(objective_names) < 2:
        problems.append(f"`{_KEY}.objective_names` needs >= 2 names; got {list(objective_names)}.")
    for name in objective_names:
        if name not in OBJECTIVE_NAMES:
            problems.append(f"`{_KEY}.objective_names`: {name!r} is not one of {list(OBJECTIVE_NAMES)}.")
    return problems


def build_instruct_lm(
    *,
    objective_names: Sequence[str] = ("helpfulness", "harmlessness"),
    completion_words: int = 16,
    steps: int = 600,
    batch_size: int = 64,
    learning_rate: float = 3e-3,
    conditioning_template: str = PREFERENCE_TEMPLATE,
    plain_prompt_template: str = RECIPE_PLAIN_TEMPLATE,
    weight_decimals: int = 2,
    cache: bool = True,
    seed: int | None = None,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    intermediate_size: int = 128,
    max_position_embeddings: int = 128,
    number_embedding: bool = False,
    grouped_completions: bool = False,
) -> LexiconInstructLM:
    """A :class:`LexiconInstructLM` after a short supervised "instruct" stage: it reads ``w`` and steers linearly.

    The model starts from the seed's random initialization and is trained for ``steps`` AdamW steps on batches of
    ``batch_size`` sequences ``conditioned prompt + completion + <eos>`` (loss on the completion tokens only),
    with preferences uniform on the simplex at two decimals and lexicon counts ``Multinomial(L, w)``
    (:func:`instruct_stage`; the module docstring says why this stands in for an instruct model). The weights
    are cached under :func:`~pareto_lightning.loading.cache_root`, keyed by every argument, so the stage runs once
    per setting. Recipes name it as the policy's model (``class_path: pareto_lightning.tasks.build_instruct_lm``).

    Args:
        objective_names: the objectives, in the order the policy writes them (``K = len(objective_names)``).
        completion_words: ``L``, words per completion.
        steps: optimizer steps of the stage (0 keeps the random initialization).
        batch_size: sequences per step.
        learning_rate: AdamW learning rate of the stage (constant).
        conditioning_template: the policy's preference sentence.
        plain_prompt_template: the policy's prompt layout.
        weight_decimals: decimals the policy writes ``w`` with.
        cache: reuse and store the trained weights on disk.
        seed: the initialization and the stage's data; None follows the global seed (``seed_everything``).
        number_embedding: read the weights as values, not digit by digit (see :class:`LexiconLM`); the
            built-in recipes turn it on, because a digit reader trained on the 11 grid weights misreads unseen
            weights such as 0.95 (``docs/steering.md``).
        grouped_completions: the stage's completions write each objective's words together (helpful words
            first), so a completion's composition is the position where it switches lexicon and greedy decoding
            writes the median composition ``round(L w_k)``; False shuffles the words.
        hidden_size, num_layers, num_heads, num_kv_heads, intermediate_size, max_position_embeddings: the
            model size, as in :class:`LexiconLM`.

    Example:
        >>> model = build_instruct_lm(steps=0, seed=0)
        >>> type(model).__name__, model.prompt_format["weight_decimals"]
        ('LexiconInstructLM', 2)
    """
    problems = _objective_problems(objective_names)
    for arg, value in (("completion_words", completion_words), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            problems.append(f"`{_KEY}.{arg}` must be an integer >= 1; got {value!r}.")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        problems.append(f"`{_KEY}.steps` must be an integer >= 0; got {steps!r}.")
    if not learning_rate > 0:
        problems.append(f"`{_KEY}.learning_rate` must be > 0; got {learning_rate!r}.")
    if problems:
        raise ValueError("invalid build_instruct_lm configuration:\n  " + "\n  ".join(problems))
    seed = torch.initial_seed() % 2**63 if seed is None else seed
    sizes = {"hidden_size": hidden_size, "num_layers": num_layers, "num_heads": num_heads,
             "num_kv_heads": num_kv_heads, "intermediate_size": intermediate_size,
             "max_position_embeddings": max_position_embeddings}  # fmt: skip
    model = LexiconInstructLM(objective_names=objective_names, conditioning_template=conditioning_template,
                              plain_prompt_template=plain_prompt_template, weight_decimals=weight_decimals,
                              seed=seed, number_embedding=number_embedding, **sizes)  # fmt: skip
    if steps == 0:
        return model
    stage = {"version": _STAGE_VERSION, "seed": seed, "completion_words": completion_words, "steps": steps,
             "batch_size": batch_size, "learning_rate": learning_rate, "sizes": sorted(sizes.items()),
             "number_embedding": bool(number_embedding), "grouped_completions": bool(grouped_completions),
             **model.prompt_format}  # fmt: skip
    digest = hashlib.sha256(json.dumps(stage, sort_keys=True).encode()).hexdigest()[:16]
    path = os.path.join(cache_root(), "lexicon_instruct", f"{digest}.pt")
    if cache and os.path.exists(path):
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return model
    instruct_stage(model, seed, completion_words, steps, batch_size, learning_rate, grouped_completions)
    if cache:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"  # written aside, then renamed: parallel runs never read half a file
        torch.save(model.state_dict(), tmp)
        os.replace(tmp, path)
    return model


def instruct_stage(
    model: LexiconInstructLM,
    seed: int,
    completion_words: int,
    steps: int,
    batch_size: int,
    learning_rate: float,
    grouped: bool = False,
) -> None:
    """Train ``model`` in place on its own prompt layout (see :func:`build_instruct_lm` for the data)."""
    tokenizer = LexiconTokenizer()
    layout = model.prompt_format
    names = layout["objective_names"]
    prompts = LexiconPrompts(num_prompts=2304, seed=seed).load()
    g = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.0)
    was_training = model.training
    model.train()
    for _ in range(steps):
        weights = two_decimal_weights(batch_size, len(names), g)  # [b, K]
        picked = torch.randint(0, len(prompts), (batch_size,), generator=g).tolist()
        texts = [
            conditioned_prompt(prompts[i], w, names, tokenizer, layout["conditioning_template"],
                               layout["weight_decimals"], layout["plain_prompt_template"])
            for i, w in zip(picked, weights, strict=True)
        ]  # fmt: skip
        completions = linear_completions(weights, completion_words, g, names, grouped)
        loss = _completion_loss(model, tokenizer, texts, completions)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    model.train(was_training)
    model.zero_grad(set_to_none=True)


def _completion_loss(
    model: LexiconInstructLM, tokenizer: LexiconTokenizer, texts: list[str], completions: list[str]
) -> Tensor:
    prompt = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    target = tokenizer([f"{c} {EOS_TOKEN}" for c in completions], return_tensors="pt", padding=True,
                       add_special_tokens=False)  # fmt: skip
    # Completions all have L words + <eos>, so the right side never pads; prompts are left-padded.
    ids = torch.cat([prompt["input_ids"], target["input_ids"]], 1)  # [b, P+T]
    mask = torch.cat([prompt["attention_mask"], target["attention_mask"]], 1)  # [b, P+T]
    positions = (mask.cumsum(-1) - 1).clamp_min(0)  # [b, P+T]
    t = target["input_ids"].shape[1]
    logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=t + 1).logits
    logits = logits[:, :-1]  # [b, T, V]: position i predicts token i + 1
    return torch.nn.functional.cross_entropy(logits.flatten(0, 1), target["input_ids"].flatten())


__all__ = [
    "LexiconInstructLM",
    "RECIPE_PLAIN_TEMPLATE",
    "build_instruct_lm",
    "cache_root",
    "instruct_stage",
    "linear_completions",
    "two_decimal_weights",
]
