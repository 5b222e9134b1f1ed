"""Does the main job steer? The README's command, unchanged, for several seeds, checked against the bar.

    python benchmarks/main_job.py --seeds 0 1 2 --out benchmarks/out/main_job

Each seed runs ``python recipes/train.py fit --config recipes/weighted_meta.yaml --seed_everything=<seed>`` in a
fresh working folder with an empty task cache (so the wall time includes building the supervised base), one run
at a time with every CPU thread, progress bar on as a user sees it. It then reads the last evaluation's
``summary.json`` and prints, per seed, the headline figures and whether each criterion holds:
greedy Spearman >= 0.9, HV ratio >= 0.90, PU regret <= 0.02 on seen and <= 0.03 on unseen weights, wall <= 600 s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRITERIA = [  # (summary key, label, bound, direction)
    ("val/spearman", "Spearman", 0.9, ">="),
    ("val/hv_ratio", "HV ratio", 0.90, ">="),
    ("val/pu_regret_seen", "PU regret seen", 0.02, "<="),
    ("val/pu_regret_unseen", "PU regret unseen", 0.03, "<="),
    ("wall_s", "wall (s)", 600.0, "<="),
]


def run_seed(seed: int, out: str, recipe: str, extra: list[str]) -> dict:
    run_dir = os.path.join(out, f"seed{seed}")
    os.makedirs(run_dir, exist_ok=True)
    cmd = [sys.executable, os.path.join(ROOT, "recipes", "train.py"), "fit", "--config", os.path.join(ROOT, recipe),
           f"--seed_everything={seed}", *extra]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PARETO_LIGHTNING_CACHE": tempfile.mkdtemp(prefix="plcache_")}
    start = time.time()
    with open(os.path.join(run_dir, "stdout.txt"), "w") as fh:
        subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, check=True, cwd=run_dir)
    wall = time.time() - start
    versions = sorted(os.listdir(os.path.join(run_dir, "lightning_logs")), key=lambda v: int(v.split("_")[1]))
    with open(os.path.join(run_dir, "lightning_logs", versions[-1], "summary.json")) as fh:
        summary = json.load(fh)
    summary["wall_s"] = wall
    with open(os.path.join(run_dir, "stdout.txt")) as fh:
        lines = [line.strip() for line in fh if line.startswith("Step ")]
    summary["headline"] = lines[-1] if lines else ""
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--recipe", default="recipes/weighted_meta.yaml")
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "out", "main_job"))
    parser.add_argument("extra", nargs="*", help="more CLI arguments for every run (after --)")
    args = parser.parse_args()
    args.out = os.path.abspath(args.out)
    rows = []
    for seed in args.seeds:
        s = run_seed(seed, args.out, args.recipe, args.extra)
        checks = [(label, s[key], bound, s[key] >= bound if op == ">=" else s[key] <= bound)
                  for key, label, bound, op in CRITERIA]  # fmt: skip
        rows.append((seed, checks, s["headline"]))
        print(f"seed {seed}: {s['headline']}", flush=True)
    header = "| seed | " + " | ".join(f"{label} ({op} {bound:g})" for _, label, bound, op in CRITERIA) + " |"
    lines = [header, "|---" * (len(CRITERIA) + 1) + "|"]
    for seed, checks, _ in rows:
        cells = [f"{v:.4f} {'ok' if ok else 'MISSED'}" if label != "wall (s)" else f"{v:.0f} {'ok' if ok else 'MISSED'}"
                 for label, v, _, ok in checks]  # fmt: skip
        lines.append(f"| {seed} | " + " | ".join(cells) + " |")
    passed = all(ok for _, checks, _ in rows for *_, ok in checks)
    lines.append(f"\nall criteria met for every seed: {'yes' if passed else 'no'}")
    md = "\n".join(lines)
    with open(os.path.join(args.out, "main_job.md"), "w") as fh:
        fh.write(md + "\n")
    print(md)


if __name__ == "__main__":
    main()
