"""Where the time of our step goes, phase by phase, set against the bare loop's phases.

Our phases are timed by wrapping the module's methods on the instance (the wrappers cost microseconds);
the Lightning loop's own share is the step window minus the ``optimizer_step`` call, which runs the
closure (``training_step``, ``zero_grad``, ``backward``) and the AdamW update. The bare loop times the same
phases inline (:mod:`.bare`); "logging and other" there is the step minus its phases (picking prompts,
bookkeeping). Two rows are cut slightly differently: our "rewards" is ``MultiObjectiveReward`` alone (the
scalarizer and advantages run in "rest of training_step"), the limit's holds the scalarizer too.
"""

from __future__ import annotations

import time
from typing import Any

import lightning.pytorch as pl

from pareto_lightning import GRPOModule

from .bare import run_bare
from .measure import SideRun, mean_phases
from .ours import run_ours
from .workload import Cell

COMMON = (
    "generation", "rewards", "policy log-probs", "reference log-probs", "loss maths", "backward", "optimizer",
    "logging and other",
)  # fmt: skip
"""The phases both sides report; ours has sub-rows (indented names) besides."""


class MethodTimer:
    """Wall seconds per phase of our step, by wrapping methods of the module and its parts."""

    def __init__(self, run: SideRun) -> None:
        self.run = run
        self.current: dict[str, float] = {}

    def wrap(self, owner: Any, name: str, phase: str) -> None:
        inner = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.current[phase] = self.current.get(phase, 0.0) + time.perf_counter() - start

        setattr(owner, name, timed)

    def install(self, module: GRPOModule) -> None:
        self.wrap(module, "training_step", "training_step")
        self.wrap(module.policy, "generate", "generate")
        self.wrap(module.policy.model, "generate", "hf_generate")
        self.wrap(module.reward, "forward", "reward")
        self.wrap(module, "compute_loss", "compute_loss")
        self.wrap(module, "reference_log_probs", "ref_logp")
        self.wrap(module, "sequence_log_probs", "logp_both")
        self.wrap(module, "log", "log")  # log_dict calls self.log once per key
        self.wrap(module, "backward", "backward")
        self.wrap(module, "optimizer_step", "optimizer_step")  # runs the closure: training_step + backward

    def callback(self) -> pl.Callback:
        """A callback that files each step's phase times into the run."""
        timer = self

        class FilePhases(pl.Callback):
            def on_train_batch_end(self, *args: Any) -> None:
                timer.run.phases.append(dict(timer.current))
                timer.current.clear()

        return FilePhases()


def our_phases(raw: dict[str, float], step_ms: float) -> dict[str, float]:
    """Our per-step milliseconds in the common phases (sub-rows indented), from the method timings.

    Args:
        raw: mean milliseconds per step of each wrapped method.
        step_ms: mean milliseconds of the timed step window.

    Example:
        >>> raw = {"training_step": 8, "generate": 3, "hf_generate": 2, "reward": 1, "compute_loss": 3,
        ...        "logp_both": 2, "log": 1, "backward": 4, "optimizer_step": 14}
        >>> p = our_phases(raw, 15.0)
        >>> p["loss maths"], p["optimizer"], p["logging and other"], p["step total"]
        (1, 2, 2.0, 15.0)
    """
    t = {k: raw.get(k, 0.0) for k in ("training_step", "generate", "hf_generate", "reward", "compute_loss",
                                       "ref_logp", "logp_both", "log", "backward", "optimizer_step")}  # fmt: skip
    rest = t["training_step"] - t["generate"] - t["reward"] - t["compute_loss"] - t["log"]
    loop = step_ms - t["optimizer_step"]
    return {
        "generation": t["generate"],
        "  of which model.generate": t["hf_generate"],
        "rewards": t["reward"],
        "policy log-probs": t["logp_both"] - t["ref_logp"],
        "reference log-probs": t["ref_logp"],
        "loss maths": t["compute_loss"] - t["logp_both"],
        "backward": t["backward"],
        "optimizer": t["optimizer_step"] - t["training_step"] - t["backward"],
        "logging and other": t["log"] + rest + loop,
        "  of which self.log / log_dict": t["log"],
        "  of which rest of training_step": rest,
        "  of which Lightning loop and hooks": loop,
        "step total": step_ms,
    }


def bare_phases(run: SideRun, warmup: int) -> dict[str, float]:
    """The bare loop's per-step milliseconds in the common phases."""
    phases = mean_phases([run], warmup)
    steps = run.wall[warmup:]
    total = 1000 * sum(steps) / max(len(steps), 1)
    out = {name: phases.get(name, 0.0) for name in COMMON[:-1]}
    out["logging and other"] = total - sum(out.values())
    out["step total"] = total
    return out


def profile(folder: str, cell: Cell, steps: int, warmup: int) -> dict[str, dict[str, float]]:
    """Our step and the bare loop's, phase by phase, in milliseconds per step (means after the warm-up).

    Returns:
        ``{"ours": {...}, "limit": {...}}`` with the rows of :func:`our_phases` and :func:`bare_phases`.
    """
    run = SideRun()
    timer = MethodTimer(run)
    measured = run_ours(folder, cell, steps, seed=0, callbacks=[timer.callback()], prepare=timer.install)
    run.wall = measured.wall
    step_ms = 1000 * sum(run.wall[warmup:]) / max(len(run.wall) - warmup, 1)
    ours = our_phases(mean_phases([run], warmup), step_ms)
    limit = bare_phases(run_bare(folder, cell, steps, seed=0), warmup)
    return {"ours": ours, "limit": limit}
