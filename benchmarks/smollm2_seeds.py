"""Mean ± std over seeds of the SmolLM2 evaluations that ``smollm2_before_after.py`` wrote.

Each argument is one evaluation folder (``<out>/trained_sweep``, or ``<out>/base_sweep`` of a ``--base-only`` run),
one per seed, all of the same method. Prints, per folder and then as mean ± std (sample standard deviation), the
Spearman correlation between ``w_k`` and the mean greedy ``r_k`` over the evaluation weights, the hypervolume and PU:

    python benchmarks/smollm2_seeds.py benchmarks/out/smollm2_meta{,_s1,_s2}/trained_sweep
"""

from __future__ import annotations

import argparse
import os
import statistics

from smollm2_before_after import front

from pareto_lightning.metrics.functional import spearman_correlation


def row(folder: str) -> list[float]:
    """Spearman per objective, hypervolume and PU of one evaluation folder."""
    weights, rewards, summary = front(os.path.join(folder, "lightning_logs", "version_0"))
    rho = [float(spearman_correlation(weights[:, k], rewards[:, k])) for k in range(weights.shape[1])]
    return [*rho, summary["val/hypervolume"], summary["val/pu"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", help="one evaluation folder per seed")
    folders = parser.parse_args().folders
    rows = [row(f) for f in folders]
    k = len(rows[0]) - 2
    print(" | ".join([*(f"Spearman {i + 1}" for i in range(k)), "hypervolume", "PU", "folder"]))
    for values, folder in zip(rows, folders, strict=True):
        print(" | ".join([*(f"{v:.2f}" for v in values[:k]), f"{values[k]:.4f}", f"{values[k + 1]:.4f}", folder]))
    if len(rows) > 1:
        columns = list(zip(*rows, strict=True))
        cells = [f"{statistics.mean(c):.{2 if i < k else 4}f} ± {statistics.stdev(c):.{2 if i < k else 4}f}"
                 for i, c in enumerate(columns)]  # fmt: skip
        print(" | ".join([*cells, f"mean ± std over {len(rows)}"]))


if __name__ == "__main__":
    main()
