"""Wall time to a PU regret, reusing each rollout for ``num_iterations`` optimizer steps (1, 2 and 4).

    python benchmarks/num_iterations.py --iterations 1 2 4 --seed 0 --out benchmarks/out/num_iterations

Each setting runs the main job's recipe (``recipes/weighted_meta.yaml``) with
``--model.init_args.num_iterations=<k>`` and an evaluation every ``--eval-every`` steps, in a fresh folder with
an empty task cache, one run at a time. Every evaluation's CSV is timestamped when it is written; its mean PU
regret (PU minus the oracle's shortfall of :class:`~pareto_lightning.tasks.LexiconTask`, over the 28 weights) is
computed from it. Printed per setting: the regret at each evaluation with the seconds since the run started, and
the first time the regret is at most each ``--targets`` value. The supervised base is built in every run, so
the times include it alike. With ``k > 1`` a step reuses a rollout made ``k - 1`` steps earlier, so a step
generates ``k`` times less often; whether it learns as much per step is what the table shows.
"""

from __future__ import annotations

import argparse
import csv
import glob
import os
import subprocess
import sys
import tempfile
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from pareto_lightning.tasks import LexiconTask  # noqa: E402


def mean_regret(path: str, task: LexiconTask) -> float:
    """Mean PU regret over the weights of one evaluation CSV (columns ``w_1..w_K`` and ``pu``)."""
    with open(path) as fh:
        rows = list(csv.DictReader(fh))
    k = sum(1 for name in rows[0] if name.startswith("w_"))
    weights = torch.tensor([[float(r[f"w_{i + 1}"]) for i in range(k)] for r in rows], dtype=torch.float64)
    pu = torch.tensor([float(r["pu"]) for r in rows], dtype=torch.float64)
    return float((pu - task.oracle_shortfall(weights)).mean())


def run(k: int, seed: int, out: str, eval_every: int, extra: list[str]) -> list[tuple[int, float, float]]:
    """Train with ``num_iterations = k``; return ``(step, seconds since start, mean regret)`` per evaluation."""
    run_dir = os.path.join(out, f"num_iterations_{k}_seed{seed}")
    os.makedirs(run_dir, exist_ok=True)
    cmd = [sys.executable, os.path.join(ROOT, "recipes", "train.py"), "fit", "--config",
           os.path.join(ROOT, "recipes", "weighted_meta.yaml"), f"--seed_everything={seed}",
           f"--model.init_args.num_iterations={k}", f"--trainer.val_check_interval={eval_every}",
           "--trainer.enable_progress_bar=false", *extra]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PARETO_LIGHTNING_CACHE": tempfile.mkdtemp(prefix="plcache_")}
    start = time.time()
    with open(os.path.join(run_dir, "stdout.txt"), "w") as fh:
        subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, check=True, cwd=run_dir)
    task = LexiconTask()
    points = []
    for path in sorted(glob.glob(os.path.join(run_dir, "lightning_logs", "version_*", "evaluations", "*.csv"))):
        step = int(os.path.basename(path).removeprefix("step_").removesuffix(".csv"))
        points.append((step, os.path.getmtime(path) - start, mean_regret(path, task)))
    return points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-every", type=int, default=400)
    parser.add_argument("--targets", type=float, nargs="+", default=[0.05, 0.02, 0.01])
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "out", "num_iterations"))
    parser.add_argument("extra", nargs="*", help="more CLI arguments for every run (after --)")
    args = parser.parse_args()
    results = {k: run(k, args.seed, os.path.abspath(args.out), args.eval_every, args.extra) for k in args.iterations}
    print(f"seed {args.seed}; mean PU regret over the 28 Table-1 weights at each evaluation (step: seconds, regret)")
    for k, points in results.items():
        print(f"num_iterations={k}: " + ", ".join(f"{s}: {t:.0f} s, {r:.4f}" for s, t, r in points))
    header = " | ".join(f"first time regret <= {t}" for t in args.targets)
    print(f"\n| num_iterations | {header} |\n|---|" + "---|" * len(args.targets))
    for k, points in results.items():
        cells = []
        for target in args.targets:
            hit = next(((s, t) for s, t, r in points if r <= target), None)
            cells.append(f"{hit[1]:.0f} s (step {hit[0]})" if hit else "not reached")
        print(f"| {k} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
