"""Why a prompt does not steer: the same text at every ``w``, or different texts whose rewards do not follow ``w``?

Reads a run folder's final evaluation (``samples.jsonl``: one greedy completion and its rewards per evaluation
prompt and weight; ``frontier.csv``: which weights were seen in training) and, per objective and per part of the
sweep (seen, unseen weights), splits the prompts by their own Spearman correlation between ``w_k`` and ``r_k``
(:func:`pareto_lightning.metrics.functional.prompt_spearman`, the metric behind ``val/prompt_steer_frac_*``):

    python benchmarks/smollm2_unsteered.py runs/i25/grid-stage2ep_s0 runs/i25/grid-stage2ep_s1

For the prompts that do not steer (Spearman <= 0.5) it prints how many give at most 3 distinct completions over the
part's weights (greedy decoding that ignores ``w``: ties), and how many move the wrong way (Spearman < 0); and the
median count of distinct completions for the prompts that steer and for those that do not.
"""

from __future__ import annotations

import argparse
import csv
import glob
import inspect
import json
import os
import statistics
from typing import NamedTuple

import torch

from pareto_lightning.metrics.functional import prompt_spearman, prompt_steerability

# A prompt steers objective k when its own Spearman is above the threshold val/prompt_steer_frac_* counts with.
STEERS_ABOVE = inspect.signature(prompt_steerability).parameters["threshold"].default
FEW_TEXTS = 3  # at most this many distinct completions over a part's weights: the policy mostly ignores w


def _one(folder: str, name: str) -> str:
    found = glob.glob(os.path.join(folder, "**", name), recursive=True)
    if len(found) != 1:
        raise SystemExit(f"{folder}: expected one {name}, found {len(found)}: {found}")
    return found[0]


class Sweep(NamedTuple):
    """A run's final evaluation, read back from its folder."""

    objectives: list[str]
    weights: list[tuple[float, ...]]  # [W] the evaluation weights, as frontier.csv lists them
    seen: list[bool]  # [W] whether each weight was seen in training
    rewards: torch.Tensor  # [P, W, K] float64
    texts: list[list[str]]  # [P][W] the greedy completions
    prompts: list[str]  # [P] in the order of samples.jsonl


def load_sweep(folder: str) -> Sweep:
    """Objective names, weights, seen mask, rewards ``[P, W, K]``, completions and prompts of a run's sweep."""
    with open(_one(folder, "frontier.csv")) as f:
        rows = list(csv.DictReader(f))
    k = sum(c.startswith("w_") for c in rows[0])
    weights = [tuple(round(float(r[f"w_{i + 1}"]), 4) for i in range(k)) for r in rows]
    seen = [r["seen"] == "1" for r in rows]
    samples = [json.loads(line) for line in open(_one(folder, "samples.jsonl"))]
    prompts = list(dict.fromkeys(s["prompt"] for s in samples))
    objectives = list(samples[0]["rewards"])
    rewards = torch.full((len(prompts), len(weights), k), float("nan"), dtype=torch.float64)
    texts = [[""] * len(weights) for _ in prompts]
    for s in samples:
        w_key = tuple(round(x, 4) for x in s["w"])
        if w_key not in weights:
            raise SystemExit(f"{folder}: samples.jsonl has w = {s['w']}, which frontier.csv does not list")
        p, w = prompts.index(s["prompt"]), weights.index(w_key)
        rewards[p, w] = torch.tensor([s["rewards"][o] for o in objectives], dtype=torch.float64)
        texts[p][w] = s["completion"]
    if rewards.isnan().any():
        raise SystemExit(
            f"{folder}: samples.jsonl lacks {int(rewards.isnan().any(-1).sum())} (prompt, w) pairs"
        )
    return Sweep(objectives, weights, seen, rewards, texts, prompts)


def _median(counts: list[int], prompts: list[int]) -> str:
    return f"{statistics.median(counts[p] for p in prompts):g}" if prompts else "n/a"


def report(folder: str) -> list[str]:
    """One markdown row per (part of the sweep, objective)."""
    objectives, weights, seen, rewards, texts, _ = load_sweep(folder)
    lines = []
    for part, keep in (("seen", True), ("unseen", False)):
        cols = [i for i, s in enumerate(seen) if s == keep]
        rho = prompt_spearman(rewards[:, cols], torch.tensor([weights[i] for i in cols], dtype=torch.float64))
        distinct = [len({t[i] for i in cols}) for t in texts]  # [P]
        for k, name in enumerate(objectives):
            steered = [p for p in range(len(texts)) if rho[p, k] > STEERS_ABOVE]
            rest = [p for p in range(len(texts)) if p not in steered]
            ties = sum(distinct[p] <= FEW_TEXTS for p in rest)
            wrong_way = sum(bool(rho[p, k] < 0) for p in rest)
            lines.append(
                f"| {folder} | {part} ({len(cols)}) | {name} | {len(steered) / len(texts):.2f} | "
                f"{_median(distinct, steered)} | {len(rest)} | {_median(distinct, rest)} | {ties} | {wrong_way} |"
            )
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "folders", nargs="+", help="run folders, each with one samples.jsonl and frontier.csv"
    )
    args = parser.parse_args(argv)
    print(
        "| run | weights | objective | prompts steered | distinct texts, steered (median) | not steered | "
        f"distinct texts, not steered (median) | not steered, <= {FEW_TEXTS} texts | not steered, Spearman < 0 |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for folder in args.folders:
        print("\n".join(report(folder)))


if __name__ == "__main__":
    main()
