"""Clocks, the record of one run of one side, and the statistics the tables print (pure functions).

How the sides are compared fairly: forced cells give every side exactly the same work (checked: every
completion has ``NEW_TOKENS`` tokens and no end-of-sequence token), so seconds per step compare directly.
In free cells each side samples its own completions, so the lengths differ from step to step; all sides
start from the same weights with the same sampling settings and the same update, so the length
distributions agree in expectation, and the tables print each side's mean tokens per step to show it.
Seconds per generated token (median over steps of step time / completion tokens in the step) corrects for
what remains; it slightly favours the side that generated more tokens, since part of a step's cost (the
optimizer, a padded decode step) does not grow with the token count. The goals are judged on seconds per
token, which equals seconds per step (times a constant) in forced cells.
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field


class Clock:
    """Wall and process CPU seconds of each timed window (``start`` then ``stop``)."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def start(self) -> None:
        self._wall, self._cpu = time.perf_counter(), time.process_time()

    def stop(self) -> None:
        self.wall.append(time.perf_counter() - self._wall)
        self.cpu.append(time.process_time() - self._cpu)


class PhaseClock:
    """Wall seconds per named phase, summed per step (``step()`` closes a step)."""

    def __init__(self) -> None:
        self.current: dict[str, float] = defaultdict(float)
        self.steps: list[dict[str, float]] = []

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.current[name] += time.perf_counter() - start

    def step(self) -> None:
        self.steps.append(dict(self.current))
        self.current.clear()


@dataclass
class SideRun:
    """Everything one run of one side measured, step by step (warm-up steps included).

    Attributes:
        wall: seconds per step, wall clock.
        cpu: process CPU seconds per step.
        lengths: per step, the token count of every completion (up to and including its end of sequence).
        ended: per step, how many completions hold an end-of-sequence token.
        threads: ``torch.get_num_threads()`` when the run ended.
        phases: per step, wall seconds per phase (only sides that time their phases).
        info: settings worth recording (e.g. TRL's mixed precision).
    """

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    lengths: list[list[int]] = field(default_factory=list)
    ended: list[int] = field(default_factory=list)
    threads: int = 0
    phases: list[dict[str, float]] = field(default_factory=list)
    info: dict[str, object] = field(default_factory=dict)

    def record_completions(self, lengths: Sequence[int], ended: int) -> None:
        """Add one step's completion lengths and its count of completions that ended."""
        self.lengths.append([int(n) for n in lengths])
        self.ended.append(int(ended))


def length_problem(run: SideRun, forced_tokens: int | None, steps: int) -> str | None:
    """Why a run's completions break the cell's promise, or ``None``.

    Every step must have recorded its completions; with ``forced_tokens`` every completion must have
    exactly that many tokens and none may hold an end-of-sequence token.

    Example:
        >>> run = SideRun(lengths=[[16, 16]], ended=[0])
        >>> length_problem(run, 16, 1), length_problem(run, 16, 2)
        (None, 'recorded completions for 1 of 2 steps')
        >>> length_problem(SideRun(lengths=[[16, 9]], ended=[1]), 16, 1)
        'completions not all 16 tokens: lengths [9, 16], 1 with EOS'
    """
    if len(run.lengths) != steps:
        return f"recorded completions for {len(run.lengths)} of {steps} steps"
    if forced_tokens is None:
        return None
    seen = sorted({n for step in run.lengths for n in step})
    if seen != [forced_tokens] or any(run.ended):
        return f"completions not all {forced_tokens} tokens: lengths {seen}, {sum(run.ended)} with EOS"
    return None


def summarize(runs: Sequence[SideRun], warmup: int) -> dict[str, float]:
    """Statistics of one side in one cell over all its runs, the first ``warmup`` steps of each dropped.

    Returns:
        ``steps`` (counted), ``wall_step`` and ``cpu_step`` (median seconds per step), ``tokens_step``
        (mean completion tokens per step), ``max_length`` (mean longest completion per step: the decode
        steps), ``eos_fraction`` (completions that ended early), ``wall_token`` and ``cpu_token`` (median
        over steps of seconds / completion tokens).

    Example:
        >>> run = SideRun(wall=[9.0, 1.0, 2.0], cpu=[9.0, 1.0, 2.0], lengths=[[4], [4], [2]], ended=[0, 0, 1])
        >>> s = summarize([run], warmup=1)
        >>> s["wall_step"], s["tokens_step"], s["wall_token"], s["eos_fraction"]
        (1.5, 3.0, 0.625, 0.5)
    """
    wall, cpu, tokens, longest, ended, count = [], [], [], [], 0, 0
    for run in runs:
        steps = min(len(run.wall), len(run.lengths))
        for i in range(warmup, steps):
            n = sum(run.lengths[i])
            wall.append(run.wall[i])
            cpu.append(run.cpu[i])
            tokens.append(n)
            longest.append(max(run.lengths[i], default=0))
            ended += run.ended[i]
            count += len(run.lengths[i])
    if not wall:
        return {"steps": 0}
    return {
        "steps": len(wall),
        "wall_step": statistics.median(wall),
        "cpu_step": statistics.median(cpu),
        "tokens_step": statistics.fmean(tokens),
        "max_length": statistics.fmean(longest),
        "eos_fraction": ended / max(count, 1),
        "wall_token": statistics.median(w / max(n, 1) for w, n in zip(wall, tokens, strict=True)),
        "cpu_token": statistics.median(c / max(n, 1) for c, n in zip(cpu, tokens, strict=True)),
    }


def mean_phases(runs: Sequence[SideRun], warmup: int) -> dict[str, float]:
    """Mean milliseconds per step of each phase, over the steps after the warm-up of every run.

    Example:
        >>> mean_phases([SideRun(phases=[{"a": 9.0}, {"a": 0.001}, {"a": 0.003}])], warmup=1)
        {'a': 2.0}
    """
    steps = [p for run in runs for p in run.phases[warmup:]]
    names = dict.fromkeys(k for p in steps for k in p)  # in the order the phases first ran
    return {k: 1000 * sum(p.get(k, 0.0) for p in steps) / max(len(steps), 1) for k in names}


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator``, or ``None`` when either is missing or the denominator is 0.

    Example:
        >>> ratio(3.0, 2.0), ratio(None, 2.0), ratio(1.0, 0.0)
        (1.5, None, None)
    """
    if numerator is None or not denominator:
        return None
    return numerator / denominator
