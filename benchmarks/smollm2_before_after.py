"""SmolLM2-135M-Instruct before and after training: the recipe's sweep and a Table-2 view on real text.

Runs the recipe's own evaluation (``validate``) on the untrained base and on a trained checkpoint, then
``predict`` on a few evaluation prompts at a few weights for both, and prints markdown tables:

- per evaluation weight (the 28 of Table 1): the mean greedy reward of each objective over the evaluation prompts;
- per objective, the Spearman correlation between ``w_k`` and ``r_k`` (all, seen and unseen weights) and the share
  of prompts it steers; the hypervolume; the mean preference utility (all, seen, unseen);
- the Table-2 sweep: the greedy completion and its rewards, base and trained side by side, with each prompt's own
  Spearman over the whole sweep (read from the sweeps' ``samples.jsonl``).

    python recipes/train.py fit --config recipes/smollm2/weighted_grpo.yaml --trainer.default_root_dir=runs/smol
    python benchmarks/smollm2_before_after.py --config recipes/smollm2/weighted_grpo.yaml \\
        --ckpt runs/smol/lightning_logs/version_0/checkpoints/last.ckpt --out benchmarks/out/smollm2

Everything after ``--`` goes to both runs (the same overrides the training run had). Runs go through the same
command line as users; a finished run is reused when its output exists.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys

import torch

from pareto_lightning.metrics.functional import prompt_spearman, spearman_correlation

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TABLE2_WEIGHTS = "[[1,0],[0.8,0.2],[0.5,0.5],[0.2,0.8],[0,1]]"


def run(subcommand: str, config: str, out: str, ckpt: str | None, extra: list[str], threads: int) -> str:
    """``recipes/train.py <subcommand>`` into ``out`` unless done; returns the run's log folder."""
    logs = os.path.join(out, "lightning_logs", "version_0")
    done = os.path.join(logs, "summary.json" if subcommand == "validate" else "predictions.jsonl")
    if not os.path.exists(done):
        cmd = [sys.executable, os.path.join(ROOT, "recipes", "train.py"), subcommand, "--config", config,
               f"--trainer.default_root_dir={out}", "--trainer.enable_progress_bar=false", *extra]  # fmt: skip
        if ckpt:
            cmd.append(f"--ckpt_path={ckpt}")
        os.makedirs(out, exist_ok=True)
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1"}
        with open(os.path.join(out, "stdout.txt"), "w") as fh:
            subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, check=True, cwd=ROOT)
    return logs


def front(logs: str) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """Weights ``[M, K]``, mean greedy rewards ``[M, K]`` and the summary of one evaluation."""
    with open(os.path.join(logs, "frontier.csv")) as fh:
        rows = list(csv.DictReader(fh))
    k = sum(key.startswith("w_") for key in rows[0])
    weights = torch.tensor([[float(r[f"w_{i + 1}"]) for i in range(k)] for r in rows], dtype=torch.float64)
    rewards = torch.tensor([[float(r[f"r_{i + 1}"]) for i in range(k)] for r in rows], dtype=torch.float64)
    with open(os.path.join(logs, "summary.json")) as fh:
        return weights, rewards, json.load(fh)


def sweep_table(names: list[str], base: tuple, trained: tuple) -> str:
    (w, r0, s0), (_, r1, s1) = base, trained
    head = " | ".join(f"{side} {n}" for side in ("base", "trained") for n in names)
    lines = [f"| w | {head} |", "|---" * (1 + 2 * len(names)) + "|"]
    for i in range(len(w)):
        cells = [f"{x:.3f}" for x in (*r0[i].tolist(), *r1[i].tolist())]
        lines.append(f"| ({', '.join(f'{x:.2f}' for x in w[i].tolist())}) | " + " | ".join(cells) + " |")
    lines += ["", "| | base | trained |", "|---|---|---|"]
    for k, name in enumerate(names):
        rho = [float(spearman_correlation(w[:, k], r[:, k])) for r in (r0, r1)]
        lines.append(f"| Spearman(w_{name}, r_{name}) | {rho[0]:.2f} | {rho[1]:.2f} |")
    # Written by evaluations that report them: the seen/unseen split and per-prompt steering (share of prompts
    # whose own Spearman is > 0.5, median per-prompt Spearman).
    split = [(f"val/{key}/{n}", f"{label} ({n})", 2) for key, label in (
        ("spearman_seen", "Spearman, seen weights"), ("spearman_unseen", "Spearman, unseen weights"),
        ("prompt_steer_frac", "prompts steered"), ("prompt_steer_frac_seen", "prompts steered, seen weights"),
        ("prompt_steer_frac_unseen", "prompts steered, unseen weights"),
        ("prompt_steer_median", "median per-prompt Spearman")) for n in names]  # fmt: skip
    for key, label, digits in [*split, ("val/hypervolume", "hypervolume", 4), ("val/pu", "PU (lower is better)", 4),
                               ("val/pu_seen", "PU seen", 4), ("val/pu_unseen", "PU unseen", 4)]:  # fmt: skip
        if key in s0 and key in s1:
            lines.append(f"| {label} | {s0[key]:.{digits}f} | {s1[key]:.{digits}f} |")
    return "\n".join(lines)


def own_spearman(samples: list[dict]) -> dict[str, list[float]]:
    """Each prompt's own Spearman between ``w_k`` and ``r_k`` over a sweep's greedy samples (``samples.jsonl``)."""
    prompts = list(dict.fromkeys(s["prompt"] for s in samples))
    weights = list(dict.fromkeys(tuple(s["w"]) for s in samples))
    names = list(samples[0]["rewards"])
    rewards = torch.full(
        (len(prompts), len(weights), len(names)), float("nan"), dtype=torch.float64
    )  # [P, W, K]
    for s in samples:
        rewards[prompts.index(s["prompt"]), weights.index(tuple(s["w"]))] = torch.tensor(
            [s["rewards"][n] for n in names], dtype=torch.float64
        )
    rho = prompt_spearman(rewards, torch.tensor(weights, dtype=torch.float64))  # [P, K]
    return {p: rho[i].tolist() for i, p in enumerate(prompts)}


def predictions_table(base_logs: str, trained_logs: str, base_sweep: str, trained_sweep: str) -> str:
    def load(logs: str) -> list[dict]:
        with open(os.path.join(logs, "predictions.jsonl")) as fh:
            return [json.loads(line) for line in fh]

    def sweep(logs: str) -> dict[str, list[float]]:
        path = os.path.join(logs, "samples.jsonl")
        if not os.path.exists(path):  # written by evaluations since per-prompt steering exists
            return {}
        with open(path) as fh:
            return own_spearman([json.loads(line) for line in fh])

    by_prompt: dict[str, list[tuple[dict, dict]]] = {}
    for b, t in zip(load(base_logs), load(trained_logs), strict=True):
        by_prompt.setdefault(b["prompt"], []).append((b, t))
    rho = {"base": sweep(base_sweep), "trained": sweep(trained_sweep)}
    out = []
    for prompt, rows in by_prompt.items():
        out += [f"**{prompt}**", ""]
        if all(prompt in side for side in rho.values()):
            own = "; ".join(
                f"{name} {', '.join(f'{x:.2f}' for x in side[prompt])}" for name, side in rho.items()
            )
            out += [f"Its own Spearman over the whole sweep, per objective: {own}.", ""]
        out += ["| w | base (rewards) | trained (rewards) |", "|---|---|---|"]
        for b, t in rows:

            def cell(p: dict) -> str:
                text = " ".join(p["completion"].split()).replace("|", "/") or "*(empty)*"
                return f"{text} ({', '.join(f'{v:.2f}' for v in p['rewards'].values())})"

            w = ", ".join(f"{x:.1f}" for x in b["w"].values())
            out.append(f"| ({w}) | {cell(b)} | {cell(t)} |")
        out.append("")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", default="recipes/smollm2/weighted_grpo.yaml")
    parser.add_argument("--ckpt", help="the trained run's checkpoint (not needed with --base-only)")
    parser.add_argument("--base-only", action="store_true", help="run the base's evaluations only, then stop")
    parser.add_argument(
        "--base-model",
        help="evaluate this model folder as the base (default: the recipe's model, "
        "the checkpoint's starting point)",
    )
    parser.add_argument("--out", default="benchmarks/out/smollm2")
    parser.add_argument("--prompts", type=int, default=3, help="evaluation prompts in the Table-2 view")
    parser.add_argument("--threads", type=int, default=1)
    args, extra = parser.parse_known_args()
    extra = [a for a in extra if a != "--"]
    if not (args.ckpt or args.base_only):
        parser.error("--ckpt is required (or --base-only)")
    config = os.path.abspath(args.config)
    ckpt = os.path.abspath(args.ckpt) if args.ckpt else None
    out = os.path.abspath(args.out)
    logs = {}
    base_extra = [f"--model.init_args.policy.init_args.model={args.base_model}"] if args.base_model else []
    for side, path in (("base", None), ("trained", ckpt))[: 1 if args.base_only else 2]:
        extra_side = extra + (base_extra if side == "base" else [])
        logs[side] = run(
            "validate", config, os.path.join(out, f"{side}_sweep"), path, extra_side, args.threads
        )
        table2 = [f"--data.init_args.eval_weights={TABLE2_WEIGHTS}",
                  f"--data.init_args.num_eval_prompts={args.prompts}"]  # fmt: skip
        logs[side + "_predict"] = run("predict", config, os.path.join(out, f"{side}_predict"), path,
                                      extra_side + table2, args.threads)  # fmt: skip
    if args.base_only:
        print(f"The base's evaluations are in {out}; run again with --ckpt for the comparison.")
        return
    names = list(json.loads(open(os.path.join(logs["base_predict"], "predictions.jsonl")).readline())["w"])
    report = "\n\n".join([
        f"Mean greedy rewards on the evaluation prompts, the base (`{args.base_model or 'the recipe model'}`) "
        f"against `{args.ckpt}`:",
        sweep_table(names, front(logs["base"]), front(logs["trained"])),
        "Greedy completions (Table-2 view):",
        predictions_table(logs["base_predict"], logs["trained_predict"], logs["base"], logs["trained"]),
    ])  # fmt: skip
    with open(os.path.join(out, "before_after.md"), "w") as fh:
        fh.write(report + "\n")
    print(report)
    print(f"\nWritten to {os.path.join(out, 'before_after.md')}")


if __name__ == "__main__":
    main()
