"""How far the front's Spearman correlations move when the evaluation prompts are drawn again (a paired bootstrap).

``val/spearman_seen/<name>`` and ``val/spearman_unseen/<name>`` rank ``w_k`` against the mean reward ``r_k`` over
the evaluation prompts, one mean per weight. With 30 prompts and weights 0.01 apart near the ends, one pair of
weights swapping order moves the correlation by a few hundredths. This script says whether a difference between
two evaluations of the same sweep (a stage and the run trained from it) is larger than that: it resamples the
prompts with replacement (Efron's bootstrap; the same draw for both folders, so the comparison is paired), and for
each draw recomputes the mean reward per weight and its Spearman correlation with ``w_k``
(:func:`pareto_lightning.metrics.functional.spearman_correlation`, the one behind ``val/spearman``)::

    python benchmarks/smollm2_bootstrap.py --pair runs/i25/stage_s1 runs/i25/cross_s1 \\
        --pair runs/i25/stage_s4 runs/i25/cross_s4

Each folder is an evaluation with one ``samples.jsonl`` and ``frontier.csv`` below it (a ``fit`` run's last
evaluation or a ``validate`` folder; see ``benchmarks/smollm2_unsteered.py``). Prints one markdown row per pair,
part of the sweep (seen, unseen weights) and objective: both correlations on the prompts as evaluated, the 90%
percentile interval of each over the draws, the interval of the difference (second minus first), and the share of
draws in which the second is at least the first.
"""

from __future__ import annotations

import argparse

import torch
from smollm2_unsteered import load_sweep
from torch import Tensor

from pareto_lightning.metrics.functional import spearman_correlation

LEVEL = 0.90
"""Coverage of the printed percentile intervals."""


def resampled_spearman(rewards: Tensor, weights: Tensor, draws: Tensor) -> Tensor:
    """The front's Spearman correlation per objective for each resampling of the prompts.

    Args:
        rewards: ``[P, W, K]`` reward of prompt ``p`` under evaluation weight ``w``.
        weights: ``[W, K]`` the evaluation weights.
        draws: ``[B, P]`` prompt indices, one row per bootstrap draw.

    Returns:
        ``[B, K]`` float64: for draw ``b`` and objective ``k``, the Spearman correlation of ``weights[:, k]`` with
        the mean of ``rewards[draws[b], :, k]`` over the drawn prompts.

    Example:
        >>> w = torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]], dtype=torch.float64)
        >>> follows, against = w, 1 - w  # [W, K] each: one prompt follows w, the other goes against it
        >>> r = torch.stack([follows, against])  # [2, 3, 2]
        >>> resampled_spearman(r, w, torch.tensor([[0, 0], [1, 1], [0, 1]]))  # both means flat on the last draw
        tensor([[ 1.,  1.],
                [-1., -1.],
                [ 0.,  0.]], dtype=torch.float64)
    """
    means = rewards.to(torch.float64)[draws].mean(dim=1)  # [B, W, K]
    return torch.tensor(
        [[spearman_correlation(weights[:, k], m[:, k]) for k in range(weights.shape[1])] for m in means],
        dtype=torch.float64,
    )


def _interval(x: Tensor) -> str:
    tail = (1 - LEVEL) / 2
    low, high = torch.quantile(x, torch.tensor([tail, 1 - tail], dtype=torch.float64)).tolist()
    return f"[{low:.2f}, {high:.2f}]"


def compare(first: str, second: str, replicates: int, seed: int) -> list[str]:
    """The markdown rows of one pair of evaluations of the same sweep."""
    one, two = load_sweep(first), load_sweep(second)
    if (one.objectives, one.weights, one.seen, one.prompts) != (
        two.objectives,
        two.weights,
        two.seen,
        two.prompts,
    ):
        raise SystemExit(
            f"{first} and {second} must be evaluations of the same objectives, weights and prompts"
        )
    prompts = len(one.prompts)
    draws = torch.randint(
        prompts, (replicates, prompts), generator=torch.Generator().manual_seed(seed)
    )  # [B, P]
    as_evaluated = torch.arange(prompts).unsqueeze(0)  # [1, P]
    lines = []
    for part, keep in (("seen", True), ("unseen", False)):
        cols = [i for i, s in enumerate(one.seen) if s == keep]
        w = torch.tensor([one.weights[i] for i in cols], dtype=torch.float64)  # [W', K]
        x, y = (resampled_spearman(s.rewards[:, cols], w, draws) for s in (one, two))  # [B, K] each
        x0, y0 = (resampled_spearman(s.rewards[:, cols], w, as_evaluated)[0] for s in (one, two))  # [K] each
        for k, name in enumerate(one.objectives):
            lines.append(
                f"| {first} | {second} | {part} ({len(cols)}) | {name} | {x0[k]:.2f} {_interval(x[:, k])} | "
                f"{y0[k]:.2f} {_interval(y[:, k])} | {y0[k] - x0[k]:+.2f} {_interval(y[:, k] - x[:, k])} | "
                f"{(y[:, k] >= x[:, k]).double().mean():.2f} |"
            )
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pair",
        nargs=2,
        action="append",
        required=True,
        metavar=("FIRST", "SECOND"),
        help="two evaluation folders of the same sweep, e.g. a stage and the run trained from it",
    )
    parser.add_argument("--replicates", type=int, default=2000, help="bootstrap draws (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the draws (default 0)")
    args = parser.parse_args(argv)
    if args.replicates < 1:
        parser.error(f"--replicates must be >= 1; got {args.replicates}")
    pct = f"{LEVEL:.0%}"
    print(
        f"| first | second | weights | objective | first Spearman [{pct}] | second Spearman [{pct}] | "
        f"second - first [{pct}] | draws with second >= first |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for first, second in args.pair:
        print("\n".join(compare(first, second, args.replicates, args.seed)))


if __name__ == "__main__":
    main()
