"""The reward interface: ``K`` reward functions scored together into a reward vector, then normalized.

A reward function is anything callable as ``fn(prompts, completions) -> Tensor[N]`` (:class:`RewardFunction`):
a plain Python function, a rule-based scorer, or a frozen :class:`~pareto_lightning.rewards.HFRewardModel`.
:class:`MultiObjectiveReward` calls each one on the same ``N`` strings and stacks their scores into rewards
``[N, K]`` (column ``k`` is objective ``k``), then applies one per-objective normalizer.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from pareto_lightning.rewards.functional import check_finite_rewards
from pareto_lightning.rewards.normalizers import RewardNormalizer

_KEY = "model.init_args.reward.init_args"


@runtime_checkable
class RewardFunction(Protocol):
    """Scores ``N`` completions of ``N`` prompts for one objective: ``(prompts, completions) -> Tensor[N]``.

    Higher is better. Returning a list of ``N`` floats is accepted too. Any callable with this signature
    qualifies, no subclassing needed.

    Example:
        >>> def brevity(prompts: list[str], completions: list[str]) -> Tensor:
        ...     return torch.tensor([-float(len(c.split())) for c in completions])
        >>> isinstance(brevity, RewardFunction)
        True
        >>> brevity(["q"], ["a short answer"])
        tensor([-3.])
    """

    def __call__(self, prompts: list[str], completions: list[str]) -> Tensor: ...


@runtime_checkable
class DeclaresObjective(Protocol):
    """A reward function that says which objective it scores: ``objective`` is its name, or None when unknown.

    :class:`MultiObjectiveReward` refuses a function whose declared objective is not the name of its slot (the
    objective whose weight ``w_k`` multiplies reward column ``k``): two functions swapped under the right names
    would otherwise train on inverted preferences without a word. The built-in rewards declare it
    (``LexiconReward``), and so do ``HFRewardModel``, ``LLMJudge`` and the scorers when configured with one.

    Example:
        >>> class Brevity:
        ...     objective = "brevity"
        ...     def __call__(self, prompts, completions):
        ...         return torch.tensor([-float(len(c.split())) for c in completions])
        >>> isinstance(Brevity(), DeclaresObjective), isinstance(lambda p, c: [0.0] * len(c), DeclaresObjective)
        (True, False)
    """

    objective: str | None

    def __call__(self, prompts: list[str], completions: list[str]) -> Tensor: ...


def declared_objective(fn: Any) -> str | None:
    """The objective ``fn`` declares it scores (:class:`DeclaresObjective`), or None.

    Example:
        >>> from pareto_lightning.tasks import LexiconReward
        >>> declared_objective(LexiconReward(1)), declared_objective(lambda p, c: [0.0] * len(c))
        ('harmlessness', None)
    """
    return fn.objective if isinstance(fn, DeclaresObjective) else None


def _describe(fn: Any) -> str:
    return getattr(fn, "__qualname__", None) or type(fn).__name__


class MultiObjectiveReward(nn.Module):
    """``K`` reward functions and a normalizer: ``(prompts, completions) -> (raw [N, K], normalized [N, K])``.

    Both tensors are returned: the training module optimizes the normalized rewards and logs both. Without a
    normalizer the normalized output *is* the raw tensor (the same object). Reward functions that are
    ``nn.Module``s are registered (in ``reward_modules``) so they move with the LightningModule to its device;
    they are scored under ``torch.no_grad`` and kept in eval mode whatever ``train()`` is asked, while the
    normalizer follows the mode: it updates its statistics only in training mode.

    Args:
        functions: the ``K`` reward functions (:class:`RewardFunction`), in objective order (the order of the
            preference ``w``).
        names: one unique name per objective, used in logs and error messages. Left out, they are
            ``objective_<k>`` until an algorithm module adopts its policy's ``objective_names``
            (:meth:`match_objectives`); given, they must equal the policy's, name by name and in order.
        normalizer: per-objective normalizer (e.g. :class:`~pareto_lightning.rewards.MaxNormalizer`, the paper's
            choice); ``None`` leaves rewards as they are.

    Example:
        >>> from pareto_lightning.rewards import MaxNormalizer
        >>> def length(prompts, completions):
        ...     return torch.tensor([float(len(c)) for c in completions])
        >>> def has_please(prompts, completions):
        ...     return [float("please" in c) for c in completions]
        >>> reward = MultiObjectiveReward([length, has_please], ["length", "polite"], normalizer=MaxNormalizer())
        >>> raw, normalized = reward(["q1", "q2"], ["ok", "yes please"])
        >>> raw
        tensor([[ 2.,  0.],
                [10.,  1.]])
        >>> normalized
        tensor([[0.2000, 0.0000],
                [1.0000, 1.0000]])
        >>> reward.num_objectives, reward.names
        (2, ['length', 'polite'])
    """

    def __init__(
        self,
        # Each is a RewardFunction; typed as any callable so the YAML parser accepts un-annotated functions and
        # nn.Module reward models, and so a scorer's own configuration error reaches the command line unwrapped.
        functions: Sequence[Callable[..., Any]],
        names: Sequence[str] | None = None,
        normalizer: RewardNormalizer | None = None,
    ) -> None:
        super().__init__()
        functions = list(functions)
        if not functions:
            raise ValueError(
                f"`functions` must list at least one reward function ({_KEY}.functions); got none."
            )
        for k, fn in enumerate(functions):
            if not callable(fn):
                raise TypeError(
                    f"reward function {k} ({_KEY}.functions[{k}]) must be callable as "
                    f"fn(prompts, completions) -> Tensor[N]; got {type(fn).__name__}."
                )
        # Names left out are the defaults `objective_<k>` until a policy adopts its own (`match_objectives`).
        self._names_given = names is not None
        if names is None:
            names = [f"objective_{k}" for k in range(len(functions))]
        names = [str(n) for n in names]
        if len(names) != len(functions):
            raise ValueError(
                f"`names` ({_KEY}.names) must have one entry per reward function: got {len(names)} names for "
                f"{len(functions)} functions."
            )
        if len(set(names)) != len(names):
            raise ValueError(f"`names` ({_KEY}.names) must be unique; got {names}.")
        if normalizer is not None and not isinstance(normalizer, RewardNormalizer):
            raise TypeError(
                f"`normalizer` ({_KEY}.normalizer) must be a RewardNormalizer or None; "
                f"got {type(normalizer).__name__}."
            )
        self._names = names
        self._functions = functions  # call order; modules among them are also registered just below
        if self._names_given:
            self._check_declared(names, f"{_KEY}.names")
        self.reward_modules = nn.ModuleList([fn for fn in functions if isinstance(fn, nn.Module)])
        self.normalizer = normalizer
        if normalizer is not None:
            normalizer.size_statistics(len(functions))  # checkpoints then always hold [K] statistics
        self.train(self.training)

    @property
    def num_objectives(self) -> int:
        """``K``, the number of reward functions."""
        return len(self._functions)

    @property
    def names(self) -> list[str]:
        """The objective names, in order."""
        return list(self._names)

    def check_num_objectives(self, k: int, key: str) -> None:
        """Raise unless the preference dimension ``k`` equals the number of reward functions.

        Args:
            k: ``K`` of the preference vectors.
            key: the config key that set ``k``, quoted in the error.

        Example:
            >>> reward = MultiObjectiveReward([lambda p, c: [0.0] * len(c)] * 2, names=["a", "b"])
            >>> reward.check_num_objectives(3, key="data.init_args.num_objectives")
            Traceback (most recent call last):
            ...
            ValueError: the preference dimension K=3 (data.init_args.num_objectives) must equal the ...
        """
        if k != self.num_objectives:
            raise ValueError(
                f"the preference dimension K={k} ({key}) must equal the number of reward functions "
                f"{self.num_objectives} (model.init_args.reward); change one of them."
            )

    def match_objectives(self, names: Sequence[str], key: str) -> None:
        """Check that reward ``k`` scores the objective the policy writes as weight ``k``.

        The policy writes ``w`` into its prompt name by name; the scalarizer puts ``w_k`` on reward column ``k``.
        Names that differ, or the same names in another order, would train the policy on inverted preferences,
        so they are refused. Rewards built without ``names`` take ``names`` here, after the objectives their
        functions declare (:class:`DeclaresObjective`) are checked against them.

        Args:
            names: the policy's objective names, in the order it writes the weights.
            key: the config key that set ``names``, quoted in the error.

        Example:
            >>> reward = MultiObjectiveReward([lambda p, c: [0.0] * len(c)] * 2, names=["harmless", "helpful"])
            >>> reward.match_objectives(["helpful", "harmless"], key="model.init_args.policy.init_args.objective_names")
            Traceback (most recent call last):
            ...
            ValueError: the reward names ['harmless', 'helpful'] (model.init_args.reward.init_args.names) must ...
            >>> MultiObjectiveReward([lambda p, c: [0.0] * len(c)] * 2).match_objectives(["a", "b"], key="k")
        """
        names = [str(n) for n in names]
        self.check_num_objectives(len(names), key)
        if not self._names_given:
            self._check_declared(names, key)
            self._names = names
            return
        if names != self._names:
            same_set = sorted(names) == sorted(self._names)
            raise ValueError(
                f"the reward names {self._names} ({_KEY}.names) must equal the policy's objective names {names} "
                f"({key}), in the same order: reward k scores the objective written as weight k"
                + (" (here the same names in another order would invert the preferences)" if same_set else "")
                + "; reorder `functions` and `names`, or the policy's names."
            )

    def _check_declared(self, names: Sequence[str], key: str) -> None:
        """Refuse a function that declares another objective than the name of its slot (all of them at once).

        Example:
            >>> from pareto_lightning.tasks import LexiconReward
            >>> MultiObjectiveReward([LexiconReward("harmlessness"), LexiconReward("helpfulness")],
            ...                      names=["helpfulness", "harmlessness"])
            Traceback (most recent call last):
            ...
            ValueError: reward functions score other objectives than their slots ...
        """
        declared = [declared_objective(fn) for fn in self._functions]
        problems = [
            f"`{_KEY}.functions[{k}]` ({_describe(fn)}) scores {d!r} but its slot is objective {k}, "
            f"{name!r} (`{key}`)"
            for k, (fn, d, name) in enumerate(zip(self._functions, declared, names, strict=True))
            if d is not None and d != name
        ]
        if not problems:
            return
        swapped = sorted(d for d in declared if d is not None) == sorted(
            n for n, d in zip(names, declared, strict=True) if d is not None
        )
        raise ValueError(
            "reward functions score other objectives than their slots (reward k must score the objective "
            "written as weight k"
            + ("; here the same objectives in another order would invert the preferences" if swapped else "")
            + "):\n  "
            + "\n  ".join(problems)
            + "\nreorder `functions`, or give each function the objective of its slot."
        )

    def train(self, mode: bool = True) -> MultiObjectiveReward:
        """Set the normalizer's mode; reward functions always stay in eval mode (no dropout in a reward)."""
        self.training = mode
        if self.normalizer is not None:
            self.normalizer.train(mode)
        for module in self.reward_modules:
            module.train(False)
        return self

    def forward(
        self, prompts: Sequence[str], completions: Sequence[str], keep_nonfinite: bool = False
    ) -> tuple[Tensor, Tensor]:
        """Score and normalize.

        Args:
            prompts: ``N`` prompts (one per completion, repeated for a group).
            completions: ``N`` completions.
            keep_nonfinite: return rows with a NaN/inf reward instead of raising (their normalized row is NaN
                and the normalizer never sees them); at least one row must be finite.

        Returns:
            ``(raw, normalized)``, both float32 ``[N, K]`` on this module's device (that of its buffers or
            parameters; the first reward's device when it has none).
        """
        prompts, completions = list(prompts), list(completions)
        if not prompts:
            raise ValueError("MultiObjectiveReward got an empty list of prompts; there is nothing to score.")
        if len(prompts) != len(completions):
            raise ValueError(
                f"MultiObjectiveReward got {len(prompts)} prompts but {len(completions)} completions; "
                f"pass one prompt per completion."
            )
        n = len(prompts)
        columns = []
        with torch.no_grad():
            for k, fn in enumerate(self._functions):
                columns.append(self._to_column(fn(prompts, completions), n, k, fn))  # [N]
        device = next(itertools.chain(self.buffers(), self.parameters()), columns[0]).device
        raw = torch.stack([c.to(device) for c in columns], dim=1)  # [N, K]
        finite = torch.isfinite(raw).all(-1)  # [N]
        if not keep_nonfinite or not finite.any():
            check_finite_rewards(raw, self._names, where="rewards")
        if self.normalizer is None:
            return raw, raw
        if finite.all():
            return raw, self.normalizer(raw, self._names)
        normalized = torch.full_like(raw, float("nan"))  # [N, K]
        normalized[finite] = self.normalizer(raw[finite], self._names)
        return raw, normalized

    def _to_column(self, out: Any, n: int, k: int, fn: Any) -> Tensor:
        label = f"reward function {k} ({self._names[k]!r}, {_describe(fn)})"
        try:
            column = out.detach() if isinstance(out, Tensor) else torch.as_tensor(out, dtype=torch.float32)
        except (TypeError, ValueError, RuntimeError) as error:
            raise TypeError(
                f"{label} must return a Tensor[N] or a list of N floats; got {type(out).__name__}."
            ) from error
        if column.dim() != 1 or column.shape[0] != n:
            raise ValueError(
                f"{label} must return a 1-D tensor of length N={n} (one score per completion); "
                f"got shape {tuple(column.shape)}."
            )
        if column.is_complex():
            raise TypeError(f"{label} must return real-valued scores; got dtype {column.dtype}.")
        return column.float()

__all__ = [
    "DeclaresObjective",
    "MultiObjectiveReward",
    "RewardFunction",
    "declared_objective",
]
