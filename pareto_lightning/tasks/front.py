"""The exact answer of the lexicon task: its Pareto front and the best point for every preference.

A completion of ``L`` words with ``c_k`` words of lexicon ``k`` gets ``r_k = (c_k / L) ** kappa``. The
achievable reward vectors are those of the count vectors with ``sum_k c_k <= L``; since every ``r_k`` grows
with ``c_k``, the Pareto-optimal ones are exactly those with ``sum_k c_k = L`` (one more objective word always
helps). Both sets are small (``C(L + K, K)`` points), so every optimum here is found by enumeration, not by a
solver.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from pareto_lightning.metrics.functional.utility import shortfall
from pareto_lightning.preferences import validate_preference
from pareto_lightning.scalarization.functional import weighted_sum
from pareto_lightning.tasks.lexicon import LexiconLM, LexiconReward, check_task_arguments
from pareto_lightning.tasks.vocabulary import OBJECTIVE_NAMES, LexiconTokenizer

if TYPE_CHECKING:  # imported when called: the task's own parts and front need neither
    from pareto_lightning.policy import PreferencePolicy
    from pareto_lightning.rewards import MultiObjectiveReward


def _compositions(parts: int, total: int, exact: bool) -> Iterator[tuple[int, ...]]:
    if parts == 1:
        yield from ((c,) for c in ([total] if exact else range(total, -1, -1)))
        return
    for first in range(total, -1, -1):
        for rest in _compositions(parts - 1, total - first, exact):
            yield (first, *rest)


def count_vectors(num_objectives: int, total: int, exact: bool = False) -> Tensor:
    """Every vector of ``K`` non-negative integers summing to ``total`` (``exact``) or at most ``total``.

    Rows are in descending lexicographic order (first entry descending, ties by the next one).

    Example:
        >>> count_vectors(2, 2, exact=True).tolist()
        [[2, 0], [1, 1], [0, 2]]
        >>> count_vectors(2, 1).tolist()
        [[1, 0], [0, 1], [0, 0]]
    """
    return torch.tensor(list(_compositions(num_objectives, total, exact)), dtype=torch.long)  # [N, K]


def counts_to_rewards(counts: Tensor, completion_words: int, kappa: float) -> Tensor:
    """``(c / L) ** kappa`` clipped to [0, 1], in float64.

    Example:
        >>> counts_to_rewards(torch.tensor([[4, 12]]), 16, 1.5)
        tensor([[0.1250, 0.6495]], dtype=torch.float64)
    """
    return (counts.to(torch.float64) / completion_words).clamp(0.0, 1.0).pow(kappa)


def shortfalls(points: Tensor, weights: Tensor, mu: float = 0.1, ideal_point: float | Tensor = 1.0) -> Tensor:
    """Smooth-Tchebycheff shortfall ``mu * log sum_k exp(w_k (z*_k - r_k) / mu)`` of every point and weight.

    Lower is better: :func:`~pareto_lightning.metrics.functional.shortfall` for every (weight, point) pair.

    Args:
        points: ``[P, K]`` reward vectors.
        weights: ``[..., K]`` preferences.

    Returns:
        ``[..., P]``.

    Example:
        >>> shortfalls(torch.tensor([[0.5, 0.5]]), torch.tensor([0.5, 0.5]))  # 0.25 + 0.1 log 2
        tensor([0.3193])
    """
    return shortfall(points, weights[..., None, :], ideal_point=ideal_point, mu=mu)  # [..., P]


class LexiconTask:
    """The built-in lexicon task: its parts (tokenizer, model, rewards) and its exact answer.

    The defaults are those of the bundled recipes. ``K = 2`` uses helpfulness and harmlessness, ``K = 3``
    adds honesty. With ``kappa > 1`` the front is non-convex: the maximizer of ``w^T r`` is a corner for every
    ``w``, while the smooth-Tchebycheff optimum moves through the interior as ``w`` changes.

    Args:
        num_objectives: ``K``, 2 or 3.
        completion_words: ``L``, the number of words a completion is scored over.
        kappa: reward exponent (> 0; 1 gives a linear front, > 1 a non-convex one).

    Example:
        >>> task = LexiconTask()
        >>> task.objective_names, task.exact_front().shape, task.achievable_points().shape
        (('helpfulness', 'harmlessness'), torch.Size([17, 2]), torch.Size([153, 2]))
        >>> task.oracle_points(torch.tensor([[0.5, 0.5]]))  # 8 words of each lexicon
        tensor([[0.3536, 0.3536]], dtype=torch.float64)
        >>> task.linear_oracle_points(torch.tensor([[0.5, 0.5]]))  # a corner (ties go to the first objective)
        tensor([[1., 0.]], dtype=torch.float64)
    """

    def __init__(self, num_objectives: int = 2, completion_words: int = 16, kappa: float = 1.5) -> None:
        problems = check_task_arguments(completion_words, kappa)
        if isinstance(num_objectives, bool) or num_objectives not in (2, 3):
            problems.insert(0, f"`num_objectives` must be 2 or 3; got {num_objectives!r}.")
        if problems:
            raise ValueError("invalid LexiconTask:\n  " + "\n  ".join(problems))
        self.num_objectives, self.completion_words = num_objectives, completion_words
        self.kappa = float(kappa)
        self.objective_names: tuple[str, ...] = OBJECTIVE_NAMES[:num_objectives]
        self._front_counts = count_vectors(num_objectives, completion_words, exact=True)  # [P, K]
        self._front = counts_to_rewards(self._front_counts, completion_words, self.kappa)  # [P, K]

    # -------------------------------------------------------------------------------------------------- parts
    def reward_functions(self) -> list[LexiconReward]:
        """One :class:`LexiconReward` per objective, in ``objective_names`` order.

        Example:
            >>> [f.name for f in LexiconTask(num_objectives=3).reward_functions()]
            ['helpfulness', 'harmlessness', 'honesty']
        """
        return [LexiconReward(n, self.completion_words, self.kappa) for n in self.objective_names]

    def tokenizer(self) -> LexiconTokenizer:
        """A fresh :class:`LexiconTokenizer` (the same for every ``K``).

        Example:
            >>> LexiconTask().tokenizer().tokenize("0.25")
            ['0', '.', '2', '5']
        """
        return LexiconTokenizer()

    def model(self, **kwargs: Any) -> LexiconLM:
        """A fresh :class:`LexiconLM`; ``kwargs`` are its size arguments and ``seed``.

        Example:
            >>> LexiconTask().model(num_layers=1).config.num_hidden_layers
            1
        """
        return LexiconLM(**kwargs)

    def policy(self, **kwargs: Any) -> PreferencePolicy:
        """A ``PreferencePolicy`` over a fresh model and tokenizer, writing this task's objective names.

        ``max_new_tokens`` defaults to ``completion_words + 1`` (the words and the end of sequence);
        ``kwargs`` go to ``PreferencePolicy`` (``model``/``tokenizer`` replace the fresh ones).

        Example:
            >>> LexiconTask().policy().max_new_tokens
            17
        """
        from pareto_lightning.policy import PreferencePolicy

        kwargs.setdefault("max_new_tokens", self.completion_words + 1)
        model = kwargs.pop("model", None)
        tokenizer = kwargs.pop("tokenizer", None)
        model = self.model() if model is None else model
        tokenizer = self.tokenizer() if tokenizer is None else tokenizer
        return PreferencePolicy(model, tokenizer, objective_names=list(self.objective_names), **kwargs)

    def reward(self, **kwargs: Any) -> MultiObjectiveReward:
        """A ``MultiObjectiveReward`` over :meth:`reward_functions`; ``kwargs`` go to it.

        Example:
            >>> raw, normalized = LexiconTask().reward()(["p"], ["helpful " * 8 + "safe " * 8])
            >>> raw  # 8 of 16 words each: 0.5 ** 1.5
            tensor([[0.3536, 0.3536]])
        """
        from pareto_lightning.rewards import MultiObjectiveReward

        return MultiObjectiveReward(
            functions=self.reward_functions(), names=list(self.objective_names), **kwargs
        )

    # ------------------------------------------------------------------------------------------- exact answer
    def exact_front(self) -> Tensor:
        """All Pareto-optimal reward vectors ``[P, K]`` (float64), first objective descending.

        They are the count vectors summing to ``completion_words``: ``C(L + K - 1, K - 1)`` points.

        Example:
            >>> LexiconTask(completion_words=2, kappa=2.0).exact_front()
            tensor([[1.0000, 0.0000],
                    [0.2500, 0.2500],
                    [0.0000, 1.0000]], dtype=torch.float64)
        """
        return self._front.clone()

    def achievable_points(self) -> Tensor:
        """Every reward vector ``[Q, K]`` a completion can get, dominated ones included (``C(L + K, K)``).

        Example:
            >>> LexiconTask(completion_words=1).achievable_points()
            tensor([[1., 0.],
                    [0., 1.],
                    [0., 0.]], dtype=torch.float64)
        """
        counts = count_vectors(self.num_objectives, self.completion_words)  # [Q, K]
        return counts_to_rewards(counts, self.completion_words, self.kappa)

    def _weights(self, weights: Tensor | Sequence[Sequence[float]]) -> Tensor:
        return validate_preference(weights, self.num_objectives, key="eval_weights").to(torch.float64)

    def _oracle(self, weights: Tensor, mu: float, ideal_point: float | Tensor) -> tuple[Tensor, Tensor]:
        w = self._weights(weights)  # [..., K]
        # The shortfall never increases when a reward increases, so its minimum over all achievable points is
        # attained on the front; searching the front also breaks ties towards non-dominated points.
        values = shortfalls(self._front.to(w.device), w, mu=mu, ideal_point=ideal_point)  # [..., P]
        best, index = values.min(dim=-1)  # [...], [...]
        return best, index

    def oracle_points(
        self, weights: Tensor | Sequence[Sequence[float]], mu: float = 0.1, ideal_point: float | Tensor = 1.0
    ) -> Tensor:
        """For each preference ``[M, K]``, the achievable reward vector with the smallest shortfall.

        The shortfall is the smooth-Tchebycheff ``mu * log sum_k exp(w_k (z*_k - r_k) / mu)``; returns
        ``[M, K]`` float64 (the first minimizer in front order on ties). The weights are checked as
        ``eval_weights``.

        Example:
            >>> task = LexiconTask()
            >>> (task.oracle_points([[0.6, 0.4], [0.4, 0.6]]).pow(1 / 1.5) * 16).round()  # words per lexicon
            tensor([[11.,  5.],
                    [ 5., 11.]], dtype=torch.float64)
        """
        _, index = self._oracle(weights, mu, ideal_point)
        return self._front.to(index.device)[index]  # [M, K]

    def oracle_shortfall(
        self, weights: Tensor | Sequence[Sequence[float]], mu: float = 0.1, ideal_point: float | Tensor = 1.0
    ) -> Tensor:
        """The best achievable shortfall ``[M]`` (float64) per preference: the floor of the preference
        utility.

        Example:
            >>> LexiconTask().oracle_shortfall(torch.tensor([[1.0, 0.0]]))  # r = (1, 0): 0.1 * log(1 + 1)
            tensor([0.0693], dtype=torch.float64)
        """
        best, _ = self._oracle(weights, mu, ideal_point)
        return best

    def linear_oracle_points(self, weights: Tensor | Sequence[Sequence[float]]) -> Tensor:
        """For each preference, the achievable reward vector maximizing ``w^T r``; ``[M, K]`` float64.

        For ``kappa > 1`` this is always a corner: the front is non-convex and linear scalarization cannot
        reach its interior (ties go to the first corner in front order).

        Example:
            >>> LexiconTask().linear_oracle_points([[0.6, 0.4], [0.4, 0.6]])
            tensor([[1., 0.],
                    [0., 1.]], dtype=torch.float64)
        """
        w = self._weights(weights)  # [..., K]
        front = self._front.to(w.device)
        index = weighted_sum(front, w[..., None, :]).argmax(dim=-1)  # [...]
        return front[index]  # [..., K]

    def __repr__(self) -> str:
        k, words = self.num_objectives, self.completion_words
        return f"LexiconTask(num_objectives={k}, completion_words={words}, kappa={self.kappa})"


__all__ = ["LexiconTask", "count_vectors", "counts_to_rewards", "shortfalls"]
