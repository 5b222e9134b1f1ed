"""Per-prompt steerability: does ``w`` steer each prompt's own completions, or only the averages?

The front metrics read one mean reward vector per evaluation weight (averaged over the evaluation prompts), so a
sweep can correlate perfectly with ``w`` while single prompts give the same text at every ``w``, or move the wrong
way. These functions read the sweep per prompt: for each prompt ``p`` and objective ``k``, the Spearman correlation
between ``w_k`` and that prompt's own reward ``r_k`` over the evaluation weights.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor

from pareto_lightning.metrics.functional.front import spearman_correlation


class PromptSteering(NamedTuple):
    """What :func:`prompt_steerability` returns (per objective ``k``, over the prompts)."""

    fraction: Tensor  # [K] share of the prompts whose own Spearman is > threshold
    median: Tensor  # [K] median of the per-prompt Spearman correlations
    per_prompt: Tensor  # [P, K] each prompt's Spearman; NaN for a prompt with no evaluated weight


def _as_sweep(rewards: Any, weights: Any) -> tuple[Tensor, Tensor]:
    r = torch.as_tensor(
        rewards.detach().cpu() if isinstance(rewards, Tensor) else rewards, dtype=torch.float64
    )
    w = torch.as_tensor(
        weights.detach().cpu() if isinstance(weights, Tensor) else weights, dtype=torch.float64
    )
    if r.dim() != 3 or w.dim() != 2 or r.shape[1:] != w.shape:
        raise ValueError(
            "`rewards` must be [P, W, K] (one reward vector per prompt and evaluation weight) and `weights` "
            f"[W, K] with the same W and K; got {tuple(r.shape)} and {tuple(w.shape)}."
        )
    if r.isinf().any():
        raise ValueError(
            f"`rewards` must be finite or NaN (not evaluated); got {int(r.isinf().sum())} infinite."
        )
    if not torch.isfinite(w).all():
        raise ValueError(f"`weights` must be finite; got {w.tolist()}.")
    return r, w


def prompt_spearman(rewards: Any, weights: Any) -> Tensor:
    """Each prompt's Spearman correlation between ``w_k`` and its own ``r_k`` over the sweep.

    For prompt ``p`` and objective ``k`` this is :func:`spearman_correlation` of ``weights[:, k]`` and
    ``rewards[p, :, k]``: the Pearson correlation of their ranks, tied values sharing the mean of the ranks they
    span (as ``scipy.stats.spearmanr``). A pair ``(p, w)`` with a NaN entry was not evaluated (a partial sweep) and
    is left out of prompt ``p``'s correlation.

    Undefined correlations count as 0 (no steering shown): when the prompt's ``r_k`` is constant over its
    evaluated weights (the same text, or texts the scorer cannot tell apart, at every ``w``), when ``w_k`` is,
    and when it has a single evaluated weight. A prompt with no evaluated weight gets NaN.

    Args:
        rewards: ``[P, W, K]`` reward of prompt ``p`` under evaluation weight ``w`` (the mean over its completions),
            NaN where not evaluated.
        weights: ``[W, K]`` the evaluation weights.

    Returns:
        ``[P, K]`` float64 in ``[-1, 1]``, NaN for the prompts never evaluated.

    Example:
        >>> w = torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
        >>> r = torch.tensor([[[0.9, 0.1], [0.5, 0.5], [0.1, 0.9]],    # follows w: +1 and +1
        ...                   [[0.5, 0.2], [0.5, 0.4], [0.5, 0.3]]])   # r_1 constant: 0; r_2 ranks 1, 3, 2: 0.5
        >>> prompt_spearman(r, w)
        tensor([[1.0000, 1.0000],
                [0.0000, 0.5000]], dtype=torch.float64)
    """
    r, w = _as_sweep(rewards, weights)
    evaluated = ~r.isnan().any(-1)  # [P, W]
    out = torch.full((r.shape[0], r.shape[2]), float("nan"), dtype=torch.float64)  # [P, K]
    for p in range(r.shape[0]):
        cols = evaluated[p]  # [W]
        if cols.any():
            # One formula in one place: spearman_correlation returns 0.0 for a constant side.
            out[p] = torch.tensor(
                [spearman_correlation(w[cols, k], r[p, cols, k]) for k in range(r.shape[2])]
            )
    return out


def prompt_steerability(rewards: Any, weights: Any, threshold: float = 0.5) -> PromptSteering:
    """Share of the prompts that ``w`` steers, and the median per-prompt Spearman, per objective.

    Per objective ``k``: ``fraction`` is the share of the evaluated prompts whose own Spearman correlation between
    ``w_k`` and ``r_k`` over the sweep (:func:`prompt_spearman`) is strictly above ``threshold``, and ``median``
    the median of those correlations (the mean of the two middle values for an even count, as ``numpy.median``).
    A prompt whose ``r_k`` is constant over the sweep has an undefined correlation: it counts as 0, so it is not
    steering and it pulls the median towards 0. Prompts with no evaluated weight are left out of both; with none
    evaluated at all, both are NaN.

    Args:
        rewards: ``[P, W, K]`` reward per (prompt, evaluation weight), NaN where not evaluated.
        weights: ``[W, K]`` the evaluation weights.
        threshold: a prompt steers objective ``k`` when its Spearman is ``> threshold`` (the default 0.5), a
            finite value in ``[-1, 1)``.

    Returns:
        :class:`PromptSteering` with ``fraction [K]``, ``median [K]`` and ``per_prompt [P, K]``, float64.

    Example:
        >>> w = torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
        >>> r = torch.tensor([[[0.9, 0.1], [0.5, 0.5], [0.1, 0.9]],    # +1, +1
        ...                   [[0.5, 0.2], [0.5, 0.4], [0.5, 0.3]],    #  0 (constant r_1), 0.5 (not > 0.5)
        ...                   [[0.1, 0.9], [0.5, 0.5], [0.9, 0.1]]])   # -1, -1
        >>> s = prompt_steerability(r, w)
        >>> s.fraction, s.median
        (tensor([0.3333, 0.3333], dtype=torch.float64), tensor([0.0000, 0.5000], dtype=torch.float64))
    """
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not -1.0 <= threshold < 1.0:
        raise ValueError(f"`threshold` must be a number in [-1, 1); got {threshold!r}.")
    rho = prompt_spearman(rewards, weights)  # [P, K]
    counted = ~rho.isnan()  # [P, K]
    fraction = (rho > threshold).sum(0).double() / counted.sum(0)  # [K], 0 / 0 = NaN with no prompt evaluated
    median = (
        torch.nanquantile(rho, 0.5, dim=0) if rho.numel() else torch.full_like(fraction, float("nan"))
    )  # [K]
    return PromptSteering(fraction=fraction, median=median, per_prompt=rho)


__all__ = ["PromptSteering", "prompt_spearman", "prompt_steerability"]
