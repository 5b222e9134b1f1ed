"""What ``MetaLoop`` needs from the trainer's settings: runs and evaluations that end between meta-iterations.

Between meta-iterations the weights are the meta-parameters; inside one they are adapted to a single
preference. A run that ended there, or an evaluation that looked there, would report (and may keep as the best
checkpoint) the wrong weights, so such settings are refused when fitting starts, naming the key to change.
"""

from __future__ import annotations

import lightning.pytorch as pl

_KEY = "trainer.callbacks[i].init_args"  # the MetaLoop entry of the callbacks list, as a user types it


def check_schedule(
    trainer: pl.Trainer, per_iteration: int, total_meta_steps: int | None, schedule: str
) -> int | None:
    """Check ``trainer.max_steps``, ``total_meta_steps`` and the evaluation cadence; return the derived ``T``.

    ``T = max_steps // per_iteration`` (None when that is 0). ``fast_dev_run`` is a smoke test of every hook
    (no checkpoints, no logs): it may end inside a meta-iteration and needs no ``T``.

    Args:
        trainer: the trainer that fits (``max_steps``, ``val_check_interval``, ...).
        per_iteration: optimizer steps per meta-iteration.
        total_meta_steps: the MetaLoop's ``T`` setting (None: derived).
        schedule: ``"linear"`` or ``"constant"``.

    Example:
        >>> from types import SimpleNamespace
        >>> trainer = SimpleNamespace(max_steps=3200, fast_dev_run=False, val_check_interval=800,
        ...                           accumulate_grad_batches=1, limit_val_batches=1.0)
        >>> check_schedule(trainer, 8, None, "linear")
        400
        >>> check_schedule(SimpleNamespace(**{**vars(trainer), "val_check_interval": 3}), 8, None, "linear")
        Traceback (most recent call last):
        ...
        ValueError: `trainer.val_check_interval`=3 can evaluate inside a meta-iteration ...
    """
    max_steps, smoke_test = trainer.max_steps, bool(trainer.fast_dev_run)
    derived = max_steps // per_iteration if max_steps > 0 else 0
    linear = schedule == "linear"
    if total_meta_steps is None and derived < 1 and linear and not smoke_test:
        raise ValueError(
            f"the linear meta_lr schedule needs T: `{_KEY}.total_meta_steps` is null and "
            f"`trainer.max_steps`={max_steps} does not cover one meta-iteration of {per_iteration} optimizer "
            f"steps; set `{_KEY}.total_meta_steps` or a larger `trainer.max_steps`."
        )
    if total_meta_steps is not None and linear and derived > total_meta_steps:
        raise ValueError(
            f"`{_KEY}.total_meta_steps`={total_meta_steps} but `trainer.max_steps`={max_steps} runs {derived} "
            f"meta-iterations of {per_iteration} optimizer steps: the linear meta_lr is 0 from meta-iteration "
            f"{total_meta_steps} on, so the last {derived - total_meta_steps} would learn nothing; set "
            f"`{_KEY}.total_meta_steps` >= {derived} (or null: it follows max_steps)."
        )
    if max_steps > 0 and max_steps % per_iteration and not smoke_test:
        lower = max_steps - max_steps % per_iteration
        raise ValueError(
            f"`trainer.max_steps`={max_steps} is not a multiple of `inner_steps * tasks_per_meta_step` = "
            f"{per_iteration} (the MetaLoop in trainer.callbacks): the run would end inside a meta-iteration, on "
            "weights adapted to one preference instead of the meta-parameters; "
            f"use {lower or per_iteration}" + (f" or {lower + per_iteration}." if lower else ".")
        )
    if not smoke_test:
        check_validation_cadence(trainer, per_iteration)
    return derived if derived >= 1 else None


def check_validation_cadence(trainer: pl.Trainer, per_iteration: int) -> None:
    """Refuse a ``trainer.val_check_interval`` that can fall inside a meta-iteration.

    An integer interval counts training batches (``accumulate_grad_batches`` per optimizer step) and must be a
    multiple of a meta-iteration's; a float (1.0: at the end of the endless training epoch, that is after
    ``max_steps``) is left to Lightning; a time interval can fall anywhere and is refused.
    """
    if trainer.limit_val_batches == 0:
        return  # no validation
    every = per_iteration * trainer.accumulate_grad_batches
    # Lightning keeps a time-based interval (a string, timedelta or dict) apart, as seconds.
    seconds = getattr(trainer, "_val_check_time_interval", None)
    if seconds is not None:
        given, example = f"a time-based `trainer.val_check_interval` (every {seconds:g} s)", every
    else:
        interval = trainer.val_check_interval
        if isinstance(interval, float) or interval % every == 0:
            return
        given, example = f"`trainer.val_check_interval`={interval}", every * max(1, interval // every)
    raise ValueError(
        f"{given} can evaluate inside a meta-iteration (one is {per_iteration} optimizer steps = {every} "
        "training batches; the MetaLoop in trainer.callbacks): the evaluation would see weights adapted to one "
        "preference, report them as the run's result and may keep them as the best checkpoint; use a multiple "
        f"of {every} training batches, e.g. {example}."
    )


__all__ = ["check_schedule", "check_validation_cadence"]
