"""Every seed and mean ± std of the SmolLM2 evaluations, per method, against the stage each seed started from.

Each folder is one evaluation: a ``fit`` run's folder (its last evaluation, written at the end of training), a
``validate`` folder, or a ``smollm2_before_after.py`` output folder (``<out>/trained_sweep``, ``<out>/base_sweep``);
the script reads the one ``summary.json`` below it. Folder ``i`` of every method is seed ``i``, trained from stage
folder ``i``. ``benchmarks/smollm2_seeds_run.sh`` runs them all and keeps each summary in
``benchmarks/results/smollm2/<piece>_s<seed>/``, where the tables of ``recipes/smollm2/README.md`` come from::

    python benchmarks/smollm2_seeds.py --stage benchmarks/results/smollm2/stage_s0 \\
        --method Weighted-Meta-GRPO benchmarks/results/smollm2/meta_s0 \\
        --method Weighted-GRPO benchmarks/results/smollm2/wgrpo_s0 --method Grid-GRPO benchmarks/results/smollm2/grid_s0

The runs of seed ``s`` (one thread each: ``OMP_NUM_THREADS=1``; ``M`` is the stage's folder)::

    python recipes/smollm2/preference_stage.py --seed $s --out M
    python recipes/train.py validate --config recipes/smollm2/weighted_meta.yaml --seed_everything=$s \\
        --model.init_args.policy.init_args.model=M --trainer.default_root_dir=runs/i25/stage_s$s
    python recipes/train.py fit --config recipes/smollm2/weighted_meta.yaml --seed_everything=$s \\
        --data.init_args.seed=$s --model.init_args.policy.init_args.model=M --trainer.default_root_dir=runs/i25/meta_s$s

and the same ``fit`` with ``weighted_grpo.yaml`` (``wgrpo_s$s``) and ``grid_grpo.yaml`` (``grid_s$s``).

Prints markdown: per method a table of every seed and the mean ± std (sample standard deviation) of the Spearman
correlation of ``w_k`` with ``r_k`` on the seen and on the unseen weights, hypervolume, PU (all, seen, unseen;
lower is better), the largest gap between neighbouring front points (points gathered at the corners leave a
large one), the share of prompts whose own Spearman is > 0.5 (all, seen, unseen weights) and the median
per-prompt Spearman; then the methods side by side, whether each method improves on its own stage in every seed
(one line per metric), and how many seeds reach the per-prompt targets (>= 0.8 of the prompts on seen weights and
>= 0.7 on unseen ones, both objectives). Values a summary lacks (an evaluation written before a metric existed)
print as ``n/a``. Positional folders alone tabulate one method's seeds without a stage.
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import statistics
from dataclasses import dataclass

TARGETS = {"prompt_steer_frac_seen": 0.8, "prompt_steer_frac_unseen": 0.7}
"""The per-prompt steering each objective should reach (issue 25): share of prompts on seen and unseen weights."""


@dataclass(frozen=True)
class Metric:
    label: str
    key: str  # in summary.json
    higher_is_better: bool
    decimals: int
    checked: bool = True  # in the "improves on its stage" lines


def metrics(names: list[str]) -> list[Metric]:
    """The rows of the tables, for the objectives ``names``."""
    rows = [Metric("step", "step", True, 0, checked=False)]
    rows += [Metric(f"Spearman {split} ({n})", f"val/spearman_{split}/{n}", True, 2)
             for split in ("seen", "unseen") for n in names]  # fmt: skip
    rows += [Metric("hypervolume", "val/hypervolume", True, 4), Metric("PU (lower is better)", "val/pu", False, 4),
             Metric("PU seen", "val/pu_seen", False, 4), Metric("PU unseen", "val/pu_unseen", False, 4),
             Metric("max gap (largest hole in the front)", "val/max_gap", False, 3, checked=False)]  # fmt: skip
    for n in names:
        rows += [Metric(f"prompts steered, all weights ({n})", f"val/prompt_steer_frac/{n}", True, 2),
                 Metric(f"prompts steered, seen ({n})", f"val/prompt_steer_frac_seen/{n}", True, 2),
                 Metric(f"prompts steered, unseen ({n})", f"val/prompt_steer_frac_unseen/{n}", True, 2),
                 Metric(f"median per-prompt Spearman ({n})", f"val/prompt_steer_median/{n}", True, 2)]  # fmt: skip
    return rows


def summary_of(folder: str) -> dict:
    """The one ``summary.json`` in or below ``folder``."""
    direct = os.path.join(folder, "summary.json")
    found = [direct] if os.path.isfile(direct) else sorted(glob.glob(os.path.join(folder, "**", "summary.json"),
                                                                     recursive=True))  # fmt: skip
    if len(found) != 1:
        raise SystemExit(f"{folder}: expected one summary.json in or below it; found {found or 'none'}.")
    with open(found[0]) as fh:
        return json.load(fh)


def objective_names(summaries: list[dict]) -> list[str]:
    """Objective names from the per-objective keys (``val/spearman_seen/<name>``), in the order written; none in
    summaries written before those keys existed (then only the other rows print)."""
    for s in summaries:
        names = [k.split("/", 2)[2] for k in s if k.startswith("val/spearman_seen/")]
        if names:
            return names
    return []


def value(summary: dict, key: str) -> float:
    v = summary.get(key)
    return float("nan") if v is None else float(v)


def fmt(x: float, decimals: int) -> str:
    return "n/a" if math.isnan(x) else f"{x:.{decimals}f}"


def mean_std(values: list[float], decimals: int) -> str:
    known = [v for v in values if not math.isnan(v)]
    if not known:
        return "n/a"
    if len(known) == 1:
        return f"{known[0]:.{decimals}f} (1 seed)"
    return f"{statistics.mean(known):.{decimals}f} ± {statistics.stdev(known):.{decimals}f}"


def seed_table(
    title: str, folders: list[str], summaries: list[dict], rows: list[Metric], seeds: list[str]
) -> list[str]:
    head = " | ".join(f"seed {s}" for s in seeds)
    out = [f"### {title}", "", f"| | {head} | mean ± std |", "|---" * (len(folders) + 2) + "|"]
    for m in rows:
        values = [value(s, m.key) for s in summaries]
        out.append(f"| {m.label} | " + " | ".join(fmt(v, m.decimals) for v in values)
                   + f" | {mean_std(values, m.decimals) if m.key != 'step' else ''} |")  # fmt: skip
    out += [""] + [f"seed {s}: {f}" for s, f in zip(seeds, folders, strict=True)] + [""]
    return out


def improves(method: list[dict], stage: list[dict], m: Metric, seeds: list[str]) -> str:
    """``yes (n/n)`` when the method beats its own stage in every seed, else ``no (k/n: seeds ...)``."""
    pairs = [(value(a, m.key), value(b, m.key)) for a, b in zip(method, stage, strict=True)]
    if any(math.isnan(a) or math.isnan(b) for a, b in pairs):
        return "n/a"
    better = [a > b if m.higher_is_better else a < b for a, b in pairs]
    if all(better):
        return f"yes ({len(better)}/{len(better)})"
    worse = ", ".join(s for s, ok in zip(seeds, better, strict=True) if not ok)
    return f"no ({sum(better)}/{len(better)}; not in seed {worse})"


def meets_targets(summary: dict, names: list[str]) -> bool | None:
    values = [value(summary, f"val/{key}/{n}") for key in TARGETS for n in names]
    if any(math.isnan(v) for v in values):
        return None
    return all(value(summary, f"val/{key}/{n}") >= t for key, t in TARGETS.items() for n in names)


def report(groups: dict[str, list[str]], stage: list[str] | None, seeds: list[str] | None = None) -> str:
    """The markdown report for ``{method: folders}`` and the stage's folders (or None).

    ``seeds`` names the columns, one per folder of each method (default ``0, 1, ...``): the seed each was run with.
    """
    if stage is not None:
        sizes = {name: len(f) for name, f in groups.items() if len(f) != len(stage)}
        if sizes:
            raise SystemExit(f"every method needs one folder per stage seed ({len(stage)}); got {sizes}.")
    every = {**({"stage": stage} if stage else {}), **groups}
    count = len(next(iter(every.values())))
    if seeds is None:
        seeds = [str(i) for i in range(count)]
    elif len(seeds) != count or any(len(f) != count for f in every.values()):
        raise SystemExit(f"--seeds names {len(seeds)} seeds; give as many folders to each method: "
                         f"{ {name: len(f) for name, f in every.items()} }.")  # fmt: skip
    summaries = {name: [summary_of(f) for f in folders] for name, folders in every.items()}
    names = objective_names([s for group in summaries.values() for s in group])
    rows = metrics(names)
    out = []
    for name, folders in every.items():
        out += seed_table("Stage alone" if name == "stage" else name, folders, summaries[name], rows, seeds)
    if len(every) > 1:
        out += [f"### Mean ± std over {count} seed{'s' if count != 1 else ''}", "", "| | " + " | ".join(every) + " |",
                "|---" * (len(every) + 1) + "|"]  # fmt: skip
        for m in rows[1:]:
            cells = [mean_std([value(s, m.key) for s in summaries[name]], m.decimals) for name in every]
            out.append(f"| {m.label} | " + " | ".join(cells) + " |")
        out.append("")
    if stage is not None and groups:
        out += ["### RL improves on its own stage in every seed (PU: lower is better)", "",
                "| | " + " | ".join(groups) + " |", "|---" * (len(groups) + 1) + "|"]  # fmt: skip
        for m in rows:
            if m.checked:
                cells = [improves(summaries[name], summaries["stage"], m, seeds) for name in groups]
                out.append(f"| {m.label} | " + " | ".join(cells) + " |")
        out.append("")
    targets = ", ".join(f"{key.removeprefix('prompt_steer_frac_')} >= {t}" for key, t in TARGETS.items())
    out += [f"### Seeds reaching the per-prompt targets (share of prompts steered, {targets}, every objective)", "",
            "| | " + " | ".join(every) + " |", "|---" * (len(every) + 1) + "|"]  # fmt: skip
    cells = []
    for name in every:
        met = [meets_targets(s, names) if names else None for s in summaries[name]]
        cells.append("n/a" if None in met else f"{sum(met)}/{len(met)}")
    out += ["| seeds | " + " | ".join(cells) + " |", ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("folders", nargs="*", help="one method's folders, one per seed (without --method)")
    parser.add_argument("--stage", nargs="+", help="the stage's evaluation folders, one per seed")
    parser.add_argument("--method", nargs="+", action="append", default=[], metavar=("NAME", "FOLDER"),
                        help="a method's name, then its folders, one per seed in the order of --stage")  # fmt: skip
    parser.add_argument(
        "--seeds", nargs="+", help="the seed of each folder, in order, for the tables (default 0 1 ...)"
    )
    args = parser.parse_args(argv)
    groups = {group[0]: group[1:] for group in args.method}
    if args.folders:
        groups = {"runs": args.folders, **groups}
    bad = [name for name, folders in groups.items() if not folders]
    if bad or not (groups or args.stage):
        parser.error(
            f"give folders: --method NAME FOLDER... (no folders for {bad})" if bad else "give folders"
        )
    print(report(groups, args.stage, args.seeds))


if __name__ == "__main__":
    main()
