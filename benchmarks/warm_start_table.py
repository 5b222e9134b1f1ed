"""Meta-learning from a policy that already reads ``w``: the regime of the paper, on the built-in task.

The paper starts every method from an instruct model that already follows its prompt. On the built-in task the
policy starts from random weights, and the meta recipes, which hold one preference per task, never learn to read
``w`` within the budget (see ``frontier_table.py``). This script separates the two questions: it takes the
Weighted-GRPO policy trained by ``frontier_table.py`` (a ``w``-reader, one per seed), and continues training it
with the four GRPO methods for the same number of steps from that same start, then writes the same table and plot:

    python benchmarks/warm_start_table.py --steps 800 --seeds 0 1 --jobs 2

The start policy comes from ``<reader-out>/weighted_grpo_seed<s>`` (trained there first if missing, with
``--reader-steps``), exported with ``save_pretrained`` and given to the recipes as
``--model.init_args.policy.init_args.model=<folder>``; the KL reference is then that start policy.
"""

from __future__ import annotations

import argparse
import os
from concurrent.futures import ThreadPoolExecutor

from frontier_table import METHODS, ROOT, plot, run_one, slug, table

CONTINUED = ["Grid-GRPO", "Grid-Meta-GRPO", "Weighted-GRPO", "Weighted-Meta-GRPO"]
READER = "Weighted-GRPO"


def export_reader(reader_out: str, seed: int, steps: int, folder: str) -> str:
    """Train (or reuse) the seed's Weighted-GRPO run and save its policy as a Hugging Face model folder."""
    import torch

    from pareto_lightning.tasks import LexiconLM

    run_one(READER, METHODS[READER], seed, steps, reader_out, 1)
    ckpt = os.path.join(reader_out, f"{slug(READER)}_seed{seed}", "lightning_logs", "version_0", "checkpoints",
                        "last.ckpt")  # fmt: skip
    state = torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]
    prefix = "policy.model."
    model = LexiconLM()
    model.load_state_dict(
        {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}, strict=True
    )
    model.save_pretrained(folder)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=800, help="steps of continued training")
    parser.add_argument("--reader-steps", type=int, default=1600, help="steps of the start policy's own run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--jobs", type=int, default=2, help="runs in parallel (one CPU thread each)")
    parser.add_argument("--reader-out", default=os.path.join(ROOT, "benchmarks", "out", "frontier"))
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "out", "warm_start"))
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    with ThreadPoolExecutor(args.jobs) as pool:
        starts = dict(zip(args.seeds, pool.map(
            lambda s: export_reader(args.reader_out, s, args.reader_steps, os.path.join(args.out, f"start_seed{s}")),
            args.seeds,
        ), strict=True))  # fmt: skip
        jobs = [(n, s) for s in args.seeds for n in CONTINUED]
        results = list(pool.map(
            lambda j: run_one(j[0], METHODS[j[0]], j[1], args.steps, args.out, 1,
                              (f"--model.init_args.policy.init_args.model={starts[j[1]]}",)),
            jobs,
        ))  # fmt: skip
    md = table(results, args.steps, args.seeds, CONTINUED)
    md += f"\nEvery run starts from the seed's Weighted-GRPO policy after {args.reader_steps} steps."
    with open(os.path.join(args.out, "warm_start_table.md"), "w") as fh:
        fh.write(md + "\n")
    plot(results, os.path.join(args.out, "warm_start.png"), CONTINUED)
    print(md)
    print(f"\nTable: {args.out}/warm_start_table.md, plot: {args.out}/warm_start.png")


if __name__ == "__main__":
    main()
