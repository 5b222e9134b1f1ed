"""Pure summary of one evaluation sweep: per-``w`` points -> Table-1 and front metrics."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import Tensor

from pareto_lightning.metrics import Hypervolume
from pareto_lightning.metrics.functional import max_gap, prompt_steerability, spearman_correlation


class KnownFront(Protocol):
    """A task that knows its exact answer (the built-in ``LexiconTask`` does)."""

    def exact_front(self) -> Tensor: ...

    def oracle_points(
        self, weights: Tensor | Sequence[Sequence[float]], mu: float = 0.1, ideal_point: float | Tensor = 1.0
    ) -> Tensor: ...

    def oracle_shortfall(
        self, weights: Tensor | Sequence[Sequence[float]], mu: float = 0.1, ideal_point: float | Tensor = 1.0
    ) -> Tensor: ...


@dataclass
class FrontSummary:
    """Everything one evaluation reports; ``scalars`` go to the logger as ``val/<name>``."""

    points: Tensor  # [M, K] mean reward per evaluation weight (the front metrics' points)
    pu: Tensor  # [M] preference-utility shortfall per weight (lower is better)
    scalars: dict[str, float] = field(default_factory=dict)


def summarize_front(
    weights: Tensor,
    seen: Tensor,
    points: Tensor,
    pu: Tensor,
    ref_point: float | Tensor,
    task: KnownFront | None = None,
    mu: float = 0.1,
    ideal_point: float | Tensor = 1.0,
    names: Sequence[str] | None = None,
    prompt_points: Tensor | None = None,
    steer_threshold: float = 0.5,
) -> FrontSummary:
    """Aggregate a sweep.

    Always: ``pu``, ``pu_seen``, ``pu_unseen``, ``hypervolume``, ``max_gap``, and the Spearman correlation of
    ``w_k`` with ``r_k`` over the weights: ``spearman`` (the mean over objectives), ``spearman_seen`` and
    ``spearman_unseen`` (the same over the seen and the unseen weights), and per objective ``spearman/<name>``,
    ``spearman_seen/<name>``, ``spearman_unseen/<name>``. A split with no weight gives NaN.

    Args:
        weights: ``[M, K]`` evaluation weights; ``seen``: ``[M]`` bool, in the training support.
        points: ``[M, K]`` mean reward vector per weight.
        pu: ``[M]`` mean shortfall per weight.
        ref_point: hypervolume reference point.
        task: when given, adds ``pu_regret`` (achieved minus the oracle's best shortfall, averaged over weights;
            ``pu_regret_seen`` and ``pu_regret_unseen`` over the seen and unseen ones),
            ``hv_ratio`` (hypervolume of ``points`` over the exact front's) and ``hv_ceiling`` (the ratio the
            oracle's point for each evaluated weight reaches: a finite sweep cannot cover the whole front).
        names: one name per objective for the per-objective keys (default ``r_1 ... r_K``).
        prompt_points: ``[P, M, K]`` mean reward per (prompt, weight), NaN where not evaluated. When given, adds
            per objective ``prompt_steer_frac/<name>`` (the share of prompts whose own Spearman over the sweep is
            ``> steer_threshold``) and ``prompt_steer_median/<name>`` (the median per-prompt Spearman), and the same
            over the seen and the unseen weights (``prompt_steer_frac_seen/<name>``, ..._unseen/<name>``); see
            :func:`~pareto_lightning.metrics.functional.prompt_steerability`.
        steer_threshold: the per-prompt Spearman above which a prompt counts as steered.

    Example:
        >>> w = torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
        >>> pts = torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
        >>> s = summarize_front(w, torch.tensor([True, True, False]), pts, torch.tensor([0.1, 0.3, 0.2]), 0.0)
        >>> round(s.scalars["hypervolume"], 3), round(s.scalars["pu_unseen"], 3), s.scalars["spearman"]
        (0.25, 0.2, 1.0)
        >>> per_prompt = torch.stack([pts, pts.flip(0)])  # [P=2, M=3, K=2]: the second prompt steers backwards
        >>> s = summarize_front(w, torch.ones(3, dtype=torch.bool), pts, torch.zeros(3), 0.0,
        ...                     names=["a", "b"], prompt_points=per_prompt)
        >>> s.scalars["prompt_steer_frac/a"], s.scalars["prompt_steer_median/b"], s.scalars["spearman_seen/b"]
        (0.5, 0.0, 1.0)
    """
    weights, points, pu = weights.double(), points.double(), pu.double()
    k = weights.shape[-1]
    scalars = {"pu": pu.mean().item()}
    scalars["pu_seen"] = pu[seen].mean().item() if seen.any() else float("nan")
    scalars["pu_unseen"] = pu[~seen].mean().item() if (~seen).any() else float("nan")
    scalars["hypervolume"] = _hypervolume(points, ref_point)
    scalars["max_gap"] = float(max_gap(points))
    names = [f"r_{i + 1}" for i in range(k)] if names is None else list(names)
    if len(names) != k:
        raise ValueError(f"`names` needs one name per objective (K={k}); got {names}.")
    for split, mask in (("", torch.ones_like(seen)), ("_seen", seen), ("_unseen", ~seen)):
        rho = [float(spearman_correlation(weights[mask, i], points[mask, i])) if mask.any() else float("nan")
               for i in range(k)]  # fmt: skip
        scalars[f"spearman{split}"] = sum(rho) / k
        scalars.update({f"spearman{split}/{n}": r for n, r in zip(names, rho, strict=True)})
        if prompt_points is not None:
            steer = prompt_steerability(
                prompt_points[:, mask], weights[mask], steer_threshold
            )  # of [P, M', K]
            for i, n in enumerate(names):
                scalars[f"prompt_steer_frac{split}/{n}"] = float(steer.fraction[i])
                scalars[f"prompt_steer_median{split}/{n}"] = float(steer.median[i])
    if task is not None:
        exact_hv = _hypervolume(task.exact_front().double(), ref_point)
        oracle = task.oracle_shortfall(weights, mu=mu, ideal_point=ideal_point).double()
        regret = pu - oracle  # [M]
        scalars["pu_regret"] = regret.mean().item()
        scalars["pu_regret_seen"] = regret[seen].mean().item() if seen.any() else float("nan")
        scalars["pu_regret_unseen"] = regret[~seen].mean().item() if (~seen).any() else float("nan")
        scalars["hv_ratio"] = scalars["hypervolume"] / exact_hv
        oracle_pts = task.oracle_points(weights, mu=mu, ideal_point=ideal_point).double()
        scalars["hv_ceiling"] = _hypervolume(oracle_pts, ref_point) / exact_hv
    return FrontSummary(points=points, pu=pu, scalars=scalars)


def _hypervolume(points: Tensor, ref_point: float | Tensor) -> float:
    # The points are already the sweep's (summed over ranks), so no second sync.
    metric = Hypervolume(ref_point=ref_point, sync_on_compute=False).set_dtype(torch.float64)
    metric.update(points[~points.isnan().any(-1)])  # a weight no rank evaluated has no point
    return float(metric.compute())

__all__ = [
    "FrontSummary",
    "KnownFront",
    "summarize_front",
]
