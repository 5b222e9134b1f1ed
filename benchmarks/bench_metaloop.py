"""Step-time overhead of the ``MetaLoop`` callback on the built-in task (target: under 5%).

Runs the same Weighted-GRPO training twice in one process, with and without ``MetaLoop`` (inner_steps 4, B 2),
alternating the two in several rounds so machine noise hits both alike, and prints the median seconds per
optimizer step of each and their ratio. The two runs sample different completions once their weights differ
(and generation time depends on them), so it also times the callback's own hooks inside the meta run and
prints their share of the step time, the overhead free of that noise:

    python benchmarks/bench_metaloop.py --steps 64 --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
import time

import lightning.pytorch as pl
import torch

from pareto_lightning import GRPOModule, MetaLoop, PreferencePromptDataModule, SmoothTchebycheff
from pareto_lightning.tasks import LexiconPrompts, LexiconTask


class StepTimer(pl.Callback):
    """Wall time of every training step (batch start to batch end, the callback hooks included)."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.times.append(time.perf_counter() - self._start)


def timed(fn, sink: list[float]):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        sink.append(time.perf_counter() - start)
        return out

    return wrapper


def run(steps: int, meta: bool, seed: int, hook_times: list[float]) -> list[float]:
    torch.manual_seed(seed)
    task = LexiconTask()
    module = GRPOModule(task.policy(max_new_tokens=16, temperature=1.0), task.reward(), SmoothTchebycheff(),
                        num_generations=8, beta=0.05, learning_rate=1e-3)  # fmt: skip
    data = PreferencePromptDataModule(LexiconPrompts(128), batch_size=8, num_eval_prompts=4)
    # The timer goes last so that its end-of-batch time includes MetaLoop's own end-of-batch work.
    timer = StepTimer()
    callbacks = [timer]
    if meta:
        loop = MetaLoop(inner_steps=4, tasks_per_meta_step=2)
        for hook in ("on_train_batch_start", "on_train_batch_end"):
            setattr(loop, hook, timed(getattr(loop, hook), hook_times))
        callbacks.insert(0, loop)
    trainer = pl.Trainer(max_steps=steps, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                         callbacks=callbacks)  # fmt: skip
    trainer.fit(module, data)
    return timer.times[8:]  # drop warm-up steps


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    plain, meta, hooks = [], [], []
    for r in range(args.rounds):
        plain += run(args.steps, False, r, [])
        meta += run(args.steps, True, r, hooks)
    p, m = statistics.median(plain), statistics.median(meta)
    print(
        f"torch threads {args.threads}, {args.rounds} rounds x {args.steps} steps (8 warm-up steps dropped each)"
    )
    print(f"GRPO step without MetaLoop: {p * 1000:7.1f} ms (median of {len(plain)})")
    print(f"GRPO step with    MetaLoop: {m * 1000:7.1f} ms (median of {len(meta)})")
    print(f"side by side: ratio {m / p:.3f} ({100 * (m / p - 1):+.1f}%; includes sampling differences)")
    per_step = sum(hooks) / (args.rounds * args.steps)
    print(
        f"MetaLoop hooks: {per_step * 1000:.2f} ms per step = {100 * per_step / m:.2f}% of a step (target < 5%)"
    )


if __name__ == "__main__":
    main()
