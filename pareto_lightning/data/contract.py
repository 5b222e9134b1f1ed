"""What the algorithm modules and callbacks may read from, and set on, the data module: one typed contract.

The data module is shared by several parts: the algorithm module checks the evaluation and training weights
before the first step, ``ParetoEvaluation`` reads the evaluation sweep, ``MetaLoop`` sets how long a preference
is held, ``GRPOModule`` how often each batch is served, and ``CrashCheckpoint`` rewinds a batch a failed step drew.
They all go through :class:`PreferenceData` (obtained with :func:`preference_data`), and the schedule they set is
one immutable :class:`PreferenceSchedule`, checked in one place each time a part replaces a field.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from torch import Tensor


class ScheduleError(ValueError):
    """A :class:`PreferenceSchedule` field out of range; ``field`` names it (for the caller to quote its key)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class PreferenceSchedule:
    """How the training stream holds preferences and serves batches. Each field has one owner.

    Attributes:
        steps_per_preference: optimizer steps one sampled preference is held for. None: not fixed by the
            configuration (one step, unless a ``MetaLoop`` sets its ``inner_steps``: the task length is its rule).
        per_prompt_preferences: one preference per prompt instead of one per batch (the data configuration's).
        weights_per_prompt: how many rows, each with its own preference, every drawn prompt gets in a batch
            (the data configuration's; more than 1 needs ``per_prompt_preferences``).
        mirror_weights: a prompt's rows come in pairs, a draw ``w`` and its mirror ``reversed(w)``
            (:func:`pareto_lightning.preferences.mirrored_pairs`; the data configuration's; needs an even
            ``weights_per_prompt``).
        batch_reuse: optimizer steps each window of batches serves (``GRPOModule``'s ``num_iterations``).
        preference_group: ``(group, groups)``: with tasks in parallel (``MetaLoop(parallel_tasks=True)``) every
            rank draws one preference per task group and keeps its group's; ``(0, 1)`` otherwise.

    Example:
        >>> schedule = PreferenceSchedule(steps_per_preference=4)
        >>> dataclasses.replace(schedule, batch_reuse=2).batch_reuse
        2
        >>> PreferenceSchedule(steps_per_preference=2, per_prompt_preferences=True)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        pareto_lightning.data.contract.ScheduleError: one preference per prompt cannot be held for several steps...
    """

    steps_per_preference: int | None = None
    per_prompt_preferences: bool = False
    batch_reuse: int = 1
    preference_group: tuple[int, int] = (0, 1)
    weights_per_prompt: int = 1
    mirror_weights: bool = False

    def __post_init__(self) -> None:
        held, reuse, (group, groups) = self.steps_per_preference, self.batch_reuse, self.preference_group
        if held is not None and (isinstance(held, bool) or not isinstance(held, int) or held < 1):
            raise ScheduleError("steps_per_preference", f"must be an integer >= 1 or null; got {held!r}.")
        if self.per_prompt_preferences and held not in (None, 1):
            raise ScheduleError(
                "per_prompt_preferences",
                f"one preference per prompt cannot be held for several steps; got steps_per_preference={held}.",
            )
        per_prompt = self.weights_per_prompt
        if isinstance(per_prompt, bool) or not isinstance(per_prompt, int) or per_prompt < 1:
            raise ScheduleError("weights_per_prompt", f"must be an integer >= 1; got {per_prompt!r}.")
        if per_prompt > 1 and not self.per_prompt_preferences:
            raise ScheduleError(
                "weights_per_prompt",
                f"{per_prompt} weights for each prompt need `data.init_args.per_prompt_preferences: true` (each "
                "row draws its own preference).",
            )
        if not isinstance(self.mirror_weights, bool):
            raise ScheduleError("mirror_weights", f"must be true or false; got {self.mirror_weights!r}.")
        if self.mirror_weights and per_prompt % 2:
            raise ScheduleError(
                "mirror_weights",
                "pairs each drawn weight with its mirror, so it needs an even `data.init_args.weights_per_prompt` "
                f"(2, 4, ...); got {per_prompt}.",
            )
        if isinstance(reuse, bool) or not isinstance(reuse, int) or reuse < 1:
            raise ScheduleError("batch_reuse", f"must be an integer >= 1; got {reuse!r}.")
        if not (isinstance(groups, int) and groups >= 1 and isinstance(group, int) and 0 <= group < groups):
            raise ScheduleError(
                "preference_group",
                f"must be (group, groups) with 0 <= group < groups; got {(group, groups)}.",
            )

    @property
    def held_steps(self) -> int:
        """Optimizer steps a preference is held for (1 when not fixed)."""
        return self.steps_per_preference or 1


@runtime_checkable
class PreferenceData(Protocol):
    """The data module as the rest of the package sees it (``PreferencePromptDataModule`` implements it).

    ``schedule`` is replaced, never edited in place (``dataclasses.replace``), so its checks always run.
    """

    schedule: PreferenceSchedule
    train_prompts: list[str]  # after setup
    train_support: Tensor | None  # [S, K] the training grid; None: the continuous simplex
    eval_prompts: list[str]  # after setup
    eval_weights: Tensor  # [M, K]
    eval_seen: Tensor  # [M] bool: the weight is a training weight

    def rewind_last_batch(self) -> None:
        """Return to the state before the last drawn batch (a step that failed midway draws it again)."""


CONTRACT = ("schedule", "train_prompts", "train_support", "eval_prompts", "eval_weights", "eval_seen",
            "rewind_last_batch")  # fmt: skip
"""The members of :class:`PreferenceData`, named in the refusal of a data module that lacks some."""


def preference_data(trainer: Any) -> PreferenceData | None:
    """The trainer's data module under the contract, or None when the trainer has none (or there is no trainer).

    Raises:
        TypeError: the data module does not provide :class:`PreferenceData`; the message names what it lacks.
    """
    datamodule = None if trainer is None else trainer.datamodule
    if datamodule is None:
        return None
    if not isinstance(datamodule, PreferenceData):
        missing = [name for name in CONTRACT if name not in dir(datamodule)]
        raise TypeError(
            f"`data`: {type(datamodule).__name__} does not provide what the algorithm module and callbacks read "
            f"from a data module (pareto_lightning.data.PreferenceData); it lacks {', '.join(missing)}. Subclass "
            "pareto_lightning.PreferencePromptDataModule, or add these members."
        )
    return datamodule


def update_schedule(data: PreferenceData | None, **changes: Any) -> None:
    """Replace fields of ``data.schedule`` (checked by :class:`PreferenceSchedule`); nothing without a data module.

    Example:
        >>> from types import SimpleNamespace
        >>> data = SimpleNamespace(schedule=PreferenceSchedule())
        >>> update_schedule(data, batch_reuse=3)
        >>> data.schedule.batch_reuse
        3
    """
    if data is not None:
        data.schedule = dataclasses.replace(data.schedule, **changes)


__all__ = [
    "CONTRACT",
    "PreferenceData",
    "PreferenceSchedule",
    "ScheduleError",
    "preference_data",
    "update_schedule",
]
