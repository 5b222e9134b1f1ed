"""The paper's Figure 2 on a known front: all five methods (and the two ablations) on the built-in task.

Trains every recipe with the same step budget and seeds, evaluates on the Table-1 weights, and writes a markdown
table (PU seen / unseen, PU regret, HV ratio and its ceiling, Spearman, max gap, wall time; mean +- std over
seeds) and one combined Pareto plot:

    python benchmarks/frontier_table.py --steps 1600 --seeds 0 1 2 --jobs 2 --out benchmarks/out/frontier

The seeds go to ``--seed_everything``, which sets the model's initialization (and the supervised base built
from it) as well as the sampling. Supervised bases are cached in ``<out>/cache``.

Runs go through the same CLI as users (``recipes/train.py fit``); a finished run is reused when its
``summary.json`` exists, so the script can be resumed.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METHODS = {
    "MO-ODPO": ["recipes/mo_odpo.yaml"],
    "Grid-GRPO": ["recipes/grid_grpo.yaml"],
    "Grid-Meta-GRPO": ["recipes/grid_meta_grpo.yaml"],
    "Weighted-GRPO": ["recipes/weighted_grpo.yaml"],
    "Weighted-Meta-GRPO": ["recipes/weighted_meta.yaml"],
    "Weighted-Meta-GRPO, alpha 0.5": ["recipes/weighted_meta.yaml", "recipes/ablations/alpha_0.5.yaml"],
    "Weighted-Meta-GRPO, beta 0.6": ["recipes/weighted_meta.yaml", "recipes/ablations/beta_0.6.yaml"],
    # Our variants, each its own row.
    "Weighted-GRPO, one w per prompt": ["recipes/weighted_grpo.yaml", "recipes/ablations/per_prompt.yaml"],
    "Weighted-Meta-GRPO, outer Nesterov": ["recipes/weighted_meta.yaml", "recipes/ablations/outer_nesterov.yaml"],
    "Weighted-Meta-GRPO, from scratch": ["recipes/weighted_meta.yaml", "recipes/ablations/from_scratch.yaml"],
}
COLUMNS = [("val/pu_seen", "PU seen", "{:.3f}"), ("val/pu_unseen", "PU unseen", "{:.3f}"),
           ("val/pu_regret_seen", "regret seen", "{:.4f}"), ("val/pu_regret_unseen", "regret unseen", "{:.4f}"),
           ("val/hv_ratio", "HV ratio", "{:.3f}"),
           ("val/spearman", "Spearman", "{:.2f}"), ("val/max_gap", "max gap", "{:.3f}"),
           ("wall_s", "wall (s)", "{:.0f}")]  # fmt: skip


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")


def run_one(
    name: str, configs: list[str], seed: int, steps: int, out: str, threads: int, extra: tuple[str, ...] = ()
) -> dict:
    """Train one recipe (``extra``: more CLI arguments) unless its summary exists; return summary + wall time."""
    run_dir = os.path.join(out, f"{slug(name)}_seed{seed}")
    summary_path = os.path.join(run_dir, "lightning_logs", "version_0", "summary.json")
    if not os.path.exists(summary_path):
        cmd = [sys.executable, os.path.join(ROOT, "recipes", "train.py"), "fit"]
        cmd += [a for c in configs for a in ("--config", os.path.join(ROOT, c))]
        cmd += [f"--seed_everything={seed}", f"--trainer.max_steps={steps}", f"--trainer.val_check_interval={steps}",
                f"--trainer.default_root_dir={run_dir}", "--trainer.enable_progress_bar=false", *extra]  # fmt: skip
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1",
               "PARETO_LIGHTNING_CACHE": os.path.join(out, "cache")}  # fmt: skip
        start = time.time()
        os.makedirs(run_dir, exist_ok=True)
        with open(os.path.join(run_dir, "stdout.txt"), "w") as fh:
            subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, check=True, cwd=run_dir)
        with open(os.path.join(run_dir, "wall.json"), "w") as fh:
            json.dump({"wall_s": time.time() - start}, fh)
    with open(summary_path) as fh:
        summary = json.load(fh)
    with open(os.path.join(run_dir, "wall.json")) as fh:
        summary.update(json.load(fh))
    with open(os.path.join(os.path.dirname(summary_path), "frontier.csv")) as fh:
        summary["points"] = [(float(r["r_1"]), float(r["r_2"]), float(r["w_1"])) for r in csv.DictReader(fh)]
    summary["method"], summary["seed"] = name, seed
    return summary


def table(results: list[dict], steps: int, seeds: list[int], methods: Iterable[str] = METHODS) -> str:
    import statistics

    lines = [f"| method ({steps} steps, seeds {', '.join(map(str, seeds))}) | "
             + " | ".join(c[1] for c in COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]  # fmt: skip
    for name in methods:
        rows = [r for r in results if r["method"] == name]
        if not rows:
            continue
        cells = []
        for key, _, fmt in COLUMNS:
            values = [r[key] for r in rows]
            mean = statistics.fmean(values)
            std = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{fmt.format(mean)} ± {fmt.format(std)}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    ceiling = results[0]["val/hv_ceiling"]
    lines.append(
        f"\nHV ratio ceiling of the 28 Table-1 weights (the oracle's point for each): {ceiling:.3f}."
    )
    return "\n".join(lines)


def plot(results: list[dict], path: str, methods: Iterable[str] = METHODS) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pareto_lightning.tasks import LexiconTask

    front = LexiconTask().exact_front().numpy()
    names = [n for n in methods if any(r["method"] == n for r in results)]
    cols = min(5, len(names))
    rows = -(-len(names) // cols)
    fig, grid = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.4 * rows), sharex=True, sharey=True, squeeze=False)
    axes = grid.ravel()
    for ax in axes[len(names) :]:
        ax.axis("off")
    for ax, name in zip(axes, names, strict=False):
        ax.plot(front[:, 0], front[:, 1], "-", color="0.75", lw=1.5)
        for r in (r for r in results if r["method"] == name):
            xs, ys, ws = zip(*r["points"], strict=True)
            ax.scatter(xs, ys, c=ws, cmap="viridis", vmin=0, vmax=1, s=16, marker="xo+"[r["seed"] % 3])
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("helpfulness")
    for ax in grid[:, 0]:
        ax.set_ylabel("harmlessness")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=1600)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--jobs", type=int, default=2, help="runs in parallel (one CPU thread each)")
    parser.add_argument("--methods", nargs="*", default=list(METHODS), help="subset of the method names")
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "out", "frontier"))
    args = parser.parse_args()
    args.out = os.path.abspath(args.out)  # every run works in its own folder
    os.makedirs(args.out, exist_ok=True)
    jobs = [(n, METHODS[n], s) for s in args.seeds for n in args.methods]
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda j: run_one(*j, args.steps, args.out, 1), jobs))
    md = table(results, args.steps, args.seeds, args.methods)
    with open(os.path.join(args.out, "frontier_table.md"), "w") as fh:
        fh.write(md + "\n")
    plot(results, os.path.join(args.out, "frontier.png"), args.methods)
    print(md)
    print(f"\nTable: {args.out}/frontier_table.md, plot: {args.out}/frontier.png")


if __name__ == "__main__":
    main()
