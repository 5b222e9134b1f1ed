"""``MetaLoop``: Reptile over preferences (paper sections 2.4, 2.5, A.4; Nichol et al. 2018, batched Algorithm 2)."""

from __future__ import annotations

from typing import Any, Literal

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities.rank_zero import rank_zero_warn
from torch import Tensor

from pareto_lightning.callbacks.meta_schedule import check_schedule
from pareto_lightning.callbacks.parallel_tasks import (
    average_gradients_within,
    release_groups,
    split_into_task_groups,
    sum_over_tasks,
    task_group,
)
from pareto_lightning.callbacks.reptile import (
    add_delta,
    copy_into,
    gathered,
    global_norm,
    outer_step,
    placed_states,
    snapshot,
)
from pareto_lightning.data.contract import PreferenceSchedule, preference_data, update_schedule

_SCHEDULES = ("linear", "constant")
_KEY = "trainer.callbacks[i].init_args"  # the MetaLoop entry of the callbacks list, as a user types it


class MetaLoop(Callback):
    r"""Reptile over preferences: adapt to ``B`` preferences in turn, then step towards the adapted weights.

    A *task* is ``inner_steps`` consecutive optimizer steps (``trainer.global_step`` increments) on one
    preference ``w``; the data module holds each sampled ``w`` for exactly that many steps (this callback owns
    the task length: it sets the data module's ``steps_per_preference`` to ``inner_steps`` when fitting starts,
    and refuses an explicit different value). Meta-iteration ``t`` (0-based) runs:

    1. snapshot the anchor :math:`\theta_0` (the trainable parameters),
    2. for task :math:`j = 1..B`: train ``inner_steps`` steps to :math:`\theta_j`, add
       :math:`\theta_j - \theta_0` to ``delta_sum``, restore :math:`\theta_0` in place,
    3. meta step :math:`\theta \leftarrow \theta_0 + \epsilon_t \frac{1}{B}\sum_j (\theta_j - \theta_0)` with
       :math:`\epsilon_t = \text{meta\_lr} \cdot \max(0, 1 - t/T)` (``"linear"``) or ``meta_lr``
       (``"constant"``); the result is the anchor of meta-iteration ``t + 1``.

    With ``outer_momentum = m > 0`` the meta step is SGD with (Nesterov) momentum on the pseudo-gradient
    :math:`g = \theta_0 - \frac{1}{B}\sum_j\theta_j` (DiLoCo's outer optimizer; the maths and its worked example
    are in :func:`~pareto_lightning.callbacks.reptile.outer_step`); ``m = 0`` is exactly the interpolation above.
    The buffer (one more float32 copy of the trainable parameters) is part of the checkpointed state.

    With a constant ``meta_lr = 1`` and ``B = 1`` this is plain training; ``meta_lr > 1`` extrapolates beyond
    the mean of the adapted weights (the paper: 1.5, decayed linearly over ``T = 400`` meta-iterations;
    ``B = 2``).

    Optimizer state is kept across tasks by default: AdamW moments (and step counts) built on one preference
    carry over into the next task and across meta steps. ``reset_optimizer_state=True`` clears
    ``optimizer.state`` of every optimizer at the start of each task, so each task starts like a fresh
    optimizer (textbook Reptile; AdamW then restarts its bias correction every task). Learning-rate schedulers
    are not touched: they keep following ``trainer.global_step``.

    The update is elementwise, so under FSDP2 it runs on each rank's local shards without gathering (a
    checkpoint gathers them one tensor at a time, to CPU, as Lightning saves callback state from rank 0). One
    optimizer step per training batch is assumed (automatic optimization); gradient accumulation is fine, as
    tasks count optimizer steps. Memory: two extra copies of the trainable parameters (anchor, ``delta_sum``).

    Logged: ``meta/task_utility`` (mean of the ``"utility"`` that ``training_step`` returns over the task's
    steps), and at each meta step ``meta/lr`` (:math:`\epsilon_t`), ``meta/step_norm``, ``meta/iteration``.
    Validation sees the current weights: run it at multiples of a meta-iteration to evaluate the
    meta-parameters (``trainer.max_steps`` and an integer ``trainer.val_check_interval`` must be such multiples;
    ``fast_dev_run``, a smoke test, may end inside one). Override :meth:`meta_lr_at` for another
    schedule.

    In a config: the ``trainer.callbacks`` entry of ``recipes/weighted_meta.yaml``.

    Args:
        inner_steps: optimizer steps per task (the paper's ``S``).
        tasks_per_meta_step: preferences per meta-iteration (``B``).
        meta_lr: outer step size :math:`\epsilon` (> 0).
        meta_lr_schedule: ``"linear"`` decays it to 0 at ``T``; ``"constant"`` keeps it.
        total_meta_steps: ``T``; None derives ``trainer.max_steps // (inner_steps * tasks_per_meta_step)``,
            also when a run is resumed with another ``max_steps`` (its remaining meta-iterations then get the
            step sizes of a run planned for that length). A linear ``T`` below the meta-iterations that
            ``max_steps`` runs is refused (those beyond ``T`` would learn nothing).
        reset_optimizer_state: clear the optimizer state at the start of every task.
        outer_momentum: momentum ``m`` in ``[0, 1)`` of the meta step (0: plain Reptile).
        outer_nesterov: Nesterov form of the momentum step (needs ``outer_momentum > 0``).
        parallel_tasks: run the ``B`` tasks of a meta-iteration at once on ``B`` groups of DDP ranks (see
            :mod:`~pareto_lightning.callbacks.parallel_tasks`); a meta-iteration is then ``inner_steps`` optimizer
            steps. With ``reset_optimizer_state: true`` it is the same algorithm as the sequential form.

    Example:
        >>> loop = MetaLoop(inner_steps=4, total_meta_steps=400)
        >>> [loop.meta_lr_at(t) for t in (0, 100, 200, 400, 500)]
        [1.5, 1.125, 0.75, 0.0, 0.0]
        >>> MetaLoop(inner_steps=4, meta_lr=0.7, outer_momentum=0.9, outer_nesterov=True).outer_momentum
        0.9
        >>> MetaLoop(inner_steps=4, parallel_tasks=True).settings["parallel_tasks"]
        True
    """

    def __init__(
        self,
        inner_steps: int,
        tasks_per_meta_step: int = 2,
        meta_lr: float = 1.5,
        meta_lr_schedule: Literal["linear", "constant"] = "linear",
        total_meta_steps: int | None = None,
        reset_optimizer_state: bool = False,
        outer_momentum: float = 0.0,
        outer_nesterov: bool = False,
        parallel_tasks: bool = False,
    ) -> None:
        problems = []
        if inner_steps < 1:
            problems.append(f"`{_KEY}.inner_steps` must be >= 1; got {inner_steps}.")
        if tasks_per_meta_step < 1:
            problems.append(f"`{_KEY}.tasks_per_meta_step` must be >= 1; got {tasks_per_meta_step}.")
        if not meta_lr > 0:
            problems.append(f"`{_KEY}.meta_lr` must be > 0; got {meta_lr}.")
        if meta_lr_schedule not in _SCHEDULES:
            problems.append(
                f"`{_KEY}.meta_lr_schedule` must be one of {_SCHEDULES}; got {meta_lr_schedule!r}."
            )
        if (
            isinstance(outer_momentum, bool)
            or not isinstance(outer_momentum, (int, float))
            or not (0 <= outer_momentum < 1)
        ):
            problems.append(f"`{_KEY}.outer_momentum` must be a number in [0, 1); got {outer_momentum!r}.")
        elif outer_nesterov and outer_momentum == 0:
            problems.append(f"`{_KEY}.outer_nesterov: true` needs `{_KEY}.outer_momentum` > 0.")
        if total_meta_steps is not None and total_meta_steps < 1:
            problems.append(f"`{_KEY}.total_meta_steps` must be >= 1 or null; got {total_meta_steps}.")
        if problems:
            raise ValueError(
                "invalid MetaLoop configuration (its entry in trainer.callbacks):\n  " + "\n  ".join(problems)
            )
        self.inner_steps, self.tasks_per_meta_step = inner_steps, tasks_per_meta_step
        self.meta_lr, self.meta_lr_schedule = float(meta_lr), meta_lr_schedule
        self.total_meta_steps, self.reset_optimizer_state = total_meta_steps, reset_optimizer_state
        self.outer_momentum, self.outer_nesterov = float(outer_momentum), bool(outer_nesterov)
        self.parallel_tasks, self._group_size = bool(parallel_tasks), 1  # ranks per task group when parallel
        self._groups: list[Any] = []  # the task groups' process groups, released at teardown

        # T as the schedule uses it: the argument, or derived from trainer.max_steps in `setup`.
        self._total: int | None = total_meta_steps
        # Index t of the running meta-iteration; 0 gives the first meta step the full meta_lr.
        self._iteration = 0
        # Tasks finished in the running meta-iteration; the meta step happens when it reaches B.
        self._tasks_done = 0
        # The global_step last handled in `on_train_batch_end`. global_step is 0 before the first optimizer
        # step, so starting at 0 makes the first check fire after it (after N batches with
        # accumulate_grad_batches=N); micro-batches in between see an unchanged step and are skipped.
        self._last_step = 0
        # The global_step of the last optimizer-state reset; -1 lets the task at step 0 reset too (a no-op).
        self._last_reset_step = -1
        # theta_0 and sum_j (theta_j - theta_0) by parameter name. None between meta-iterations: the anchor is
        # taken at the next batch, from the weights the meta step left.
        self._anchor: dict[str, Tensor] | None = None
        self._delta_sum: dict[str, Tensor] | None = None
        # The outer momentum buffer b by parameter name; None until the first meta step (and with m = 0).
        self._buffer: dict[str, Tensor] | None = None
        self._utility_sum, self._utility_count = 0.0, 0  # the steps' returned utility, over the running task
        self._check_loaded = False  # a state from a checkpoint is matched to the parameters at first use

    @property
    def settings(self) -> dict[str, Any]:
        """The arguments that define the meta-learning algorithm (a checkpoint records them; a resume must match).

        Example:
            >>> MetaLoop(inner_steps=4).settings["inner_steps"]
            4
        """
        return {
            "inner_steps": self.inner_steps,
            "tasks_per_meta_step": self.tasks_per_meta_step,
            "meta_lr": self.meta_lr,
            "meta_lr_schedule": self.meta_lr_schedule,
            "reset_optimizer_state": self.reset_optimizer_state,
            "outer_momentum": self.outer_momentum,
            "outer_nesterov": self.outer_nesterov,
            "parallel_tasks": self.parallel_tasks,
        }

    def meta_lr_at(self, t: int, total: int | None = None) -> float:
        """The outer step size :math:`\\epsilon_t` of meta-iteration ``t`` (0-based); override to change it.

        Args:
            t: meta-iteration index.
            total: ``T``; None uses ``total_meta_steps`` (or the value derived when fitting starts).

        Example:
            >>> MetaLoop(inner_steps=2, meta_lr=2.0).meta_lr_at(3, total=4)
            0.5
        """
        if self.meta_lr_schedule == "constant":
            return self.meta_lr
        total = self._total if total is None else total
        if total is None:
            raise ValueError(
                f"the linear meta_lr schedule needs T: set `{_KEY}.total_meta_steps` (or "
                "`trainer.max_steps`, from which it is derived when fitting starts), or pass `total`."
            )
        return self.meta_lr * max(0.0, 1.0 - t / total)

    # -------------------------------------------------------------------------------------------- fit start
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        data = preference_data(trainer)
        schedule = data.schedule if data is not None else PreferenceSchedule()
        if schedule.per_prompt_preferences:
            raise ValueError(
                "`data.init_args.per_prompt_preferences: true` gives every prompt its own preference, but a "
                "MetaLoop task trains on one preference; set it to false."
            )
        reuse = getattr(pl_module, "num_iterations", 1)
        if self.inner_steps % reuse:
            raise ValueError(
                f"`{_KEY}.inner_steps`={self.inner_steps} must be a multiple of `model.init_args.num_iterations`="
                f"{reuse}: a rollout made under one task's preference would be reused in the next task."
            )
        # The task length has one owner, this callback: the data module holds each preference for inner_steps.
        held = schedule.steps_per_preference
        if held is not None and held != self.inner_steps:
            raise ValueError(
                f"`data.init_args.steps_per_preference`={held} must equal `{_KEY}.inner_steps`="
                f"{self.inner_steps} (both count the optimizer steps spent on one preference); leave the "
                "first unset (the MetaLoop sets it)."
            )
        update_schedule(data, steps_per_preference=self.inner_steps)
        per_iteration = self.inner_steps * (1 if self.parallel_tasks else self.tasks_per_meta_step)
        if self.parallel_tasks:
            self._group_size = split_into_task_groups(trainer, data, self.tasks_per_meta_step)
        derived = check_schedule(trainer, per_iteration, self.total_meta_steps, self.meta_lr_schedule)
        if self.total_meta_steps is None:
            self._total = derived

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.parallel_tasks:  # the DDP wrapper exists from here on
            group, ranks = task_group(trainer.global_rank, trainer.world_size, self.tasks_per_meta_step)
            self._groups = average_gradients_within(trainer.strategy.model, ranks, group)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._groups = release_groups(self._groups)

    # --------------------------------------------------------------------------------------------- the loop
    def _trainable(self, pl_module: pl.LightningModule) -> dict[str, Tensor]:
        params = dict(pl_module.named_parameters())
        if self._check_loaded:  # a state from a checkpoint: same parameters, moved to their devices
            states = placed_states((self._anchor, self._delta_sum, self._buffer), params)
            self._anchor, self._delta_sum, self._buffer = states
            self._check_loaded = False
        if self._anchor is None:
            return {name: p for name, p in params.items() if p.requires_grad}
        return {name: params[name] for name in self._anchor}

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        step = trainer.global_step
        if self.reset_optimizer_state and step % self.inner_steps == 0 and step != self._last_reset_step:
            for optimizer in trainer.optimizers:
                optimizer.state.clear()
            self._last_reset_step = step
        if self._anchor is None:
            self._anchor = snapshot(self._trainable(pl_module))

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        step = trainer.global_step
        if step <= self._last_step:  # a gradient-accumulation micro-batch: no optimizer step happened
            return
        self._last_step = step
        # The algorithm modules return the step's mean utility next to the loss (not read back from a log key).
        utility = outputs.get("utility") if isinstance(outputs, dict) else None
        if utility is not None:
            self._utility_sum += float(utility)
            self._utility_count += 1
        if step % self.inner_steps == 0:
            self._end_task(pl_module)

    def _end_task(self, pl_module: pl.LightningModule) -> None:
        params = self._trainable(pl_module)
        anchor = self._anchor
        assert anchor is not None  # taken in on_train_batch_start of this meta-iteration's first batch
        self._delta_sum = add_delta(params, anchor, self._delta_sum)
        self._tasks_done += 1
        if self.parallel_tasks:  # every group ended its task at once: one all-reduce sums their deltas
            self._delta_sum = sum_over_tasks(self._delta_sum, self._group_size)
            self._tasks_done = self.tasks_per_meta_step
        if self._utility_count:
            mean_utility = self._utility_sum / self._utility_count
            pl_module.log("meta/task_utility", mean_utility, on_step=True, on_epoch=False)
        self._utility_sum, self._utility_count = 0.0, 0
        if self._tasks_done < self.tasks_per_meta_step:
            copy_into(params, anchor)
            return
        eps = self.meta_lr_at(self._iteration)
        new_params, self._buffer = outer_step(
            anchor, self._delta_sum, self.tasks_per_meta_step, eps,
            momentum=self.outer_momentum, nesterov=self.outer_nesterov, buffer=self._buffer,
        )  # fmt: skip
        step_norm = global_norm(new_params[n].float() - anchor[n].float() for n in new_params)
        copy_into(params, new_params)
        self._iteration, self._tasks_done = self._iteration + 1, 0
        self._anchor = self._delta_sum = None
        pl_module.log("meta/lr", eps, on_step=True, on_epoch=False)
        pl_module.log("meta/step_norm", step_norm, on_step=True, on_epoch=False)
        pl_module.log("meta/iteration", float(self._iteration), on_step=True, on_epoch=False)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._anchor is not None:  # taken at a meta-iteration's first batch, dropped by its meta step
            per_iteration = self.inner_steps * self.tasks_per_meta_step
            rank_zero_warn(
                f"training stopped inside meta-iteration {self._iteration} (after {self._tasks_done} of "
                f"{self.tasks_per_meta_step} tasks, global_step={trainer.global_step}): the weights are "
                "adapted to the last preference, not the meta-parameters. Make `trainer.max_steps` a "
                f"multiple of inner_steps * tasks_per_meta_step = {per_iteration}."
            )

    # ------------------------------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        return {
            "inner_steps": self.inner_steps,
            "tasks_per_meta_step": self.tasks_per_meta_step,
            "total_meta_steps": self._total,
            "iteration": self._iteration,
            "tasks_done": self._tasks_done,
            "last_step": self._last_step,
            "last_reset_step": self._last_reset_step,
            "anchor": gathered(self._anchor),
            "delta_sum": gathered(self._delta_sum),
            "outer_momentum": self.outer_momentum,
            "buffer": gathered(self._buffer),
            "utility_sum": self._utility_sum,
            "utility_count": self._utility_count,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        saved = (state_dict["inner_steps"], state_dict["tasks_per_meta_step"])
        if state_dict["anchor"] is not None and saved != (self.inner_steps, self.tasks_per_meta_step):
            raise ValueError(
                f"the checkpoint stopped inside a meta-iteration with inner_steps={saved[0]} and "
                f"tasks_per_meta_step={saved[1]}; resume with the same `{_KEY}.inner_steps` and "
                f"`{_KEY}.tasks_per_meta_step`."
            )
        total, iteration = state_dict["total_meta_steps"], int(state_dict["iteration"])
        if self.total_meta_steps is not None and total != self.total_meta_steps:
            rank_zero_warn(
                f"`{_KEY}.total_meta_steps`={self.total_meta_steps} replaces the checkpoint's T={total}."
            )
        elif self._total is None:  # not derived (loaded outside `fit`): the checkpoint's schedule
            self._total = total
        elif total != self._total and self.meta_lr_schedule == "linear":
            # T follows trainer.max_steps: a run extended (or shortened) on resume gives its remaining
            # meta-iterations the step sizes a run planned with that max_steps gives them. Keeping the old T would
            # make meta_lr 0 for every meta-iteration beyond it, so an extension would learn nothing.
            last = self._total - 1
            remaining = (
                f"meta-iterations {iteration} to {last}" if iteration < last else f"meta-iteration {last}"
            )
            rank_zero_warn(
                f"the linear meta_lr schedule follows `trainer.max_steps`: T={self._total} meta-iterations (the "
                f"checkpoint's run had T={total}), so {remaining} get meta_lr * (1 - t / {self._total}); set "
                f"`{_KEY}.total_meta_steps` to fix T instead."
            )
        self._iteration, self._tasks_done = iteration, int(state_dict["tasks_done"])
        self._last_step = int(state_dict["last_step"])
        self._last_reset_step = int(state_dict["last_reset_step"])
        self._anchor, self._delta_sum = (
            None if state_dict[k] is None else dict(state_dict[k]) for k in ("anchor", "delta_sum")
        )
        buffer = state_dict.get("buffer")  # absent in checkpoints written before outer momentum existed
        if buffer is not None and not self.outer_momentum:
            rank_zero_warn(
                f"the checkpoint has an outer momentum buffer but `{_KEY}.outer_momentum` is 0: the buffer is "
                "dropped and the meta steps continue as plain Reptile."
            )
            buffer = None
        self._buffer = None if buffer is None else dict(buffer)
        self._utility_sum, self._utility_count = (
            float(state_dict["utility_sum"]),
            int(state_dict["utility_count"]),
        )
        self._check_loaded = self._anchor is not None or self._buffer is not None

__all__ = [
    "MetaLoop",
]
