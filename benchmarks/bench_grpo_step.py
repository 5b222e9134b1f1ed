"""Seconds per GRPO step on the CPU: ours (``GRPOModule`` under a Lightning ``Trainer``) vs TRL's
``GRPOTrainer`` vs the limit (the same work as a bare PyTorch loop), over a grid of settings.

The grid (every combination; filter it with ``--models``, ``--threads``, ``--lengths``, ``--betas``):

* torch threads 1 and 2;
* completion lengths forced to exactly 16 tokens, or free (a completion ends at its first end-of-sequence
  token, at most 16 tokens);
* ``beta`` 0 (no reference model) and 0.1 (k3 KL to a frozen copy of the starting weights);
* two models: ``tiny``, the built-in ``LexiconLM`` (Qwen2 h64/L2, 80k parameters), and ``smol135m``, a
  random Llama of SmolLM2-135M's configuration with its full 49152-token vocabulary (see
  ``grpo_step/models.py``: the lexicon tokenizer padded to 49152 tokens, so prompts tokenize identically;
  with random weights its completions almost never end early, so its free cells time nearly full lengths);
* and, when selected (``--models smollm2``; it needs ``python recipes/smollm2/fetch.py`` first), the
  real SmolLM2-135M-Instruct with the LoRA adapter of ``recipes/smollm2/`` on every side.

Our side runs once per generation backend of ``--backends`` (``grpo_step/backends.py``; default: only
``default``, the policy's ``HFGeneration``): each backend is one more column of every cell, run in the same
rounds as the other sides, with the ratio ``ours/<backend>`` (above 1: faster than the default backend) and
the seconds of each run's first step, where a compiling backend compiles.

Every step of every side does the same work (``grpo_step/workload.py``): 4 prompts x 4 completions, the
same reward code, GRPO with one update per rollout, AdamW; TRL is set to float32, no gradient
checkpointing and no clipping, unlike its defaults (``grpo_step/trl_side.py``; the optional side
``trl_defaults`` keeps them). The sides of a cell run one after another, the order flipping from round
to round and cell to cell, so a busy spell of a shared machine hits them alike; the first ``--warmup``
steps of every run are dropped. Forced cells check that every completion of every side has 16 tokens.
Free cells compare seconds per generated token as well as per step (``grpo_step/measure.py`` says why
that is fair); the goals (TRL / ours >= 1.5x, ours / limit <= 1.2x) are judged per token, wall clock.
Printed: a table of every cell (wall clock, then process CPU time, which other processes disturb less)
and the per-phase profile of our step next to the limit's for each model. ``--json OUT`` saves every
number, step by step.

Runs (2 cores; needs ``pip install -e ".[bench]"``):

* full grid: ``python benchmarks/bench_grpo_step.py --json bench_grpo_step.json`` (about 1.5 to 2 hours on
  an idle 2-core machine, nearly all of it the 135M model; ``--models tiny`` takes about 3 minutes). Run it
  on an otherwise idle machine: with other processes on the cores, OpenMP threads wait on each other and
  2-thread cells slow down many times over, unevenly between sides (cells measured under load are marked);
* smoke run: ``python benchmarks/bench_grpo_step.py --quick --models tiny --threads 1 --betas 0``;
* backends: ``python benchmarks/bench_grpo_step.py --quick --threads 1 --betas 0 --sides ours
  --backends default,static,static_eager,continuous`` (the 135M cells with compilation take several minutes).
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import sys
import tempfile
import time
import traceback
import warnings
from dataclasses import asdict

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import torch  # noqa: E402
import transformers  # noqa: E402
from grpo_step.backends import BACKENDS, parse_backends, side_key  # noqa: E402
from grpo_step.bare import run_bare  # noqa: E402
from grpo_step.measure import SideRun, length_problem, summarize  # noqa: E402
from grpo_step.models import MODELS, prepare  # noqa: E402
from grpo_step.ours import run_ours  # noqa: E402
from grpo_step.phases import profile  # noqa: E402
from grpo_step.report import (  # noqa: E402
    cell_ratios,
    first_step_table,
    goal_summary,
    grid_table,
    profile_table,
)
from grpo_step.trl_side import run_trl  # noqa: E402
from grpo_step.workload import LENGTHS, NEW_TOKENS, NUM_GENERATIONS, NUM_PROMPTS, Cell, grid  # noqa: E402

RUNNERS = {
    "ours": run_ours,
    "trl": run_trl,
    "bare": run_bare,
    "trl_defaults": lambda folder, cell, steps, seed: run_trl(folder, cell, steps, seed, defaults=True),
}
STEPS = {"tiny": (40, 5), "smol135m": (8, 2), "smollm2": (8, 2)}
"""Model -> (steps per run, warm-up steps dropped) unless ``--steps``/``--warmup`` are given."""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", default=["tiny", "smol135m"], choices=list(MODELS))
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2], help="torch.set_num_threads values")
    parser.add_argument("--lengths", nargs="+", default=list(LENGTHS), choices=list(LENGTHS))
    parser.add_argument("--betas", nargs="+", type=float, default=[0.0, 0.1])
    parser.add_argument("--sides", nargs="+", default=["ours", "trl", "bare"], choices=list(RUNNERS),
                        help="bare is the limit column; trl_defaults is TRL with its own defaults")  # fmt: skip
    parser.add_argument(
        "--steps", type=int, help=f"steps per run, warm-up included (default per model {STEPS})"
    )
    parser.add_argument("--warmup", type=int, help="first steps of every run left out")
    parser.add_argument(
        "--backends",
        nargs="+",
        default=["default"],
        help=f"generation backends of our side: {sorted(BACKENDS)}",
    )
    parser.add_argument("--rounds", type=int, default=2, help="runs per side and cell (the order alternates)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 3 steps (1 warm-up), 1 round")
    parser.add_argument("--no-profile", action="store_true", help="skip the per-phase profile")
    parser.add_argument("--json", metavar="OUT", help="save every number (per step) to this JSON file")
    args = parser.parse_args()
    args.backends = parse_backends(args.backends)
    if "ours" in args.sides:  # one column of ours per backend, next to the default's
        at = args.sides.index("ours") + 1
        args.sides[at:at] = [side_key(b) for b in args.backends[1:]]
    for backend in args.backends[1:]:
        RUNNERS[side_key(backend)] = backend_runner(backend)
    if args.quick:
        args.steps = args.steps or 3
        args.warmup = 1 if args.warmup is None else args.warmup
        args.rounds = 1
    return args


def backend_runner(backend: str):
    """Our side with the generation backend ``backend``."""

    def run(folder: str, cell: Cell, steps: int, seed: int) -> SideRun:
        return run_ours(folder, cell, steps, seed, backend=backend)

    return run


def steps_for(model: str, args: argparse.Namespace) -> tuple[int, int]:
    """Steps per run and warm-up steps for ``model``."""
    steps, warmup = STEPS[model]
    steps, warmup = args.steps or steps, warmup if args.warmup is None else args.warmup
    if not 0 <= warmup < steps:
        raise SystemExit(f"`--warmup` must be in [0, --steps); got warmup {warmup}, steps {steps}.")
    return steps, warmup


def quiet() -> None:
    warnings.filterwarnings("ignore")
    transformers.utils.logging.disable_progress_bar()
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "transformers", "trl", "accelerate"):
        logging.getLogger(name).setLevel(logging.ERROR)


def measure_grid(cells: list[Cell], folders: dict[str, str], args: argparse.Namespace) -> list[dict]:
    """Run every side of every cell ``--rounds`` times; returns one record per cell."""
    runs: dict[str, dict[str, list[SideRun]]] = {c.key: {s: [] for s in args.sides} for c in cells}
    notes: dict[str, list[str]] = {c.key: [] for c in cells}
    total, done = args.rounds * len(cells) * len(args.sides), 0
    for r in range(args.rounds):
        for i, cell in enumerate(cells):
            steps, _ = steps_for(cell.model, args)
            order = args.sides if (r + i) % 2 == 0 else args.sides[::-1]
            for side in order:
                done += 1
                try:
                    run = RUNNERS[side](folders[cell.model], cell, steps, seed=r)
                except Exception as error:  # a failed side is reported in its cell; the grid goes on
                    notes[cell.key].append(f"{side} failed: {type(error).__name__}: {error}"[:200])
                    traceback.print_exc(file=sys.stderr)
                    continue
                finally:
                    gc.collect()
                problem = length_problem(run, NEW_TOKENS if cell.forced else None, steps)
                if problem:
                    notes[cell.key].append(f"{side}: {problem}")
                if run.threads != cell.threads:
                    notes[cell.key].append(f"{side}: ran with {run.threads} threads")
                run.info["load_end"] = load = os.getloadavg()[0]
                if load + cell.threads > (os.cpu_count() or 1) + 0.5:
                    notes[cell.key].append("busy machine: other processes compete for the cores")
                runs[cell.key][side].append(run)
                steps_done = run.wall[steps_for(cell.model, args)[1] :]
                print(f"[{done}/{total}] {cell.key} {side}: median {sorted(steps_done)[len(steps_done) // 2]:.4f} "
                      f"s/step", file=sys.stderr, flush=True)  # fmt: skip
    records = []
    for cell in cells:
        warmup = steps_for(cell.model, args)[1]
        summaries = {side: summarize(rs, warmup) for side, rs in runs[cell.key].items() if rs}
        records.append({
            "key": cell.key, "cell": asdict(cell), "summaries": summaries, "notes": sorted(set(notes[cell.key])),
            "ratios_wall": cell_ratios(summaries, "wall"), "ratios_cpu": cell_ratios(summaries, "cpu"),
            "runs": {side: [asdict(run) for run in rs] for side, rs in runs[cell.key].items()},
        })  # fmt: skip
    return records


def run_profiles(cells: list[Cell], folders: dict[str, str], args: argparse.Namespace) -> list[dict]:
    """Per model and beta: our step and the limit's by phase (first thread count, forced lengths if selected)."""
    lengths = "forced" if "forced" in args.lengths else args.lengths[0]
    picked = [Cell(m, args.threads[0], lengths, b) for m in args.models for b in args.betas]
    out = []
    for cell in picked:
        steps, warmup = steps_for(cell.model, args)
        try:
            phases = profile(folders[cell.model], cell, steps, warmup)
        except Exception as error:
            traceback.print_exc(file=sys.stderr)
            phases = {"error": f"{type(error).__name__}: {error}"}
        gc.collect()
        out.append({"key": cell.key, "steps": steps, "warmup": warmup, "phases": phases})
    return out


def main() -> None:
    args = parse_args()
    quiet()
    cells = grid(args.models, args.threads, args.lengths, args.betas)
    start, load = time.time(), os.getloadavg()
    with tempfile.TemporaryDirectory() as root:
        folders = prepare(args.models, root)
        records = measure_grid(cells, folders, args)
        profiles = [] if args.no_profile else run_profiles(cells, folders, args)
    per_model = ", ".join(f"{m}: {steps_for(m, args)[0]} steps, first {steps_for(m, args)[1]} dropped"
                          for m in args.models)  # fmt: skip
    print(f"GRPO step on CPU: {NUM_PROMPTS} prompts x {NUM_GENERATIONS} completions x up to {NEW_TOKENS} tokens; "
          f"{args.rounds} run(s) per side and cell ({per_model})")  # fmt: skip
    for m in args.models:
        print(f"  {m}: {MODELS[m][0]}")
    print("Cells: model/threads/lengths/beta. Median seconds per step; mean completion tokens per step; ratios per "
          "step and per generated token (goals judged per token).\n")  # fmt: skip
    print(grid_table(records, args.sides, "wall"))
    print("\n" + goal_summary(records) + "\n")
    print(grid_table(records, args.sides, "cpu"))
    print("\n" + first_step_table(records, args.sides))
    for p in profiles:
        if "error" in p["phases"]:
            print(f"\nprofile {p['key']} failed: {p['phases']['error']}")
            continue
        n = p["steps"] - p["warmup"]
        print("\n" + profile_table(f"our step by phase, {p['key']}: ms per step (mean of {n} steps, wall clock)",
                                   p["phases"]))  # fmt: skip
    elapsed = time.time() - start
    print(f"\n{elapsed:.0f} s; load average {load[0]:.2f} at the start, {os.getloadavg()[0]:.2f} at the end")
    if args.json:
        import importlib.metadata as metadata

        versions = {}
        for package in ("transformers", "trl", "lightning"):
            try:
                versions[package] = metadata.version(package)
            except metadata.PackageNotFoundError:
                versions[package] = None
        meta = {"args": vars(args), "seconds": elapsed, "load_start": load, "load_end": os.getloadavg(),
                "cpu_count": os.cpu_count(), "torch": torch.__version__, **versions}  # fmt: skip
        with open(args.json, "w") as fh:
            json.dump({"meta": meta, "cells": records, "profiles": profiles}, fh, indent=1)
        print(f"saved {args.json}")


if __name__ == "__main__":
    main()
