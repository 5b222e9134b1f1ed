"""The cross-weight advantage: each completion against the same prompt's completions under other weights.

GRPO centres each utility on its group, the ``G`` completions of one prompt under one ``w``. That baseline removes
every difference between the groups, so a prompt answered under several weights never learns from how its answers
*across* those weights differ: only from which answer is best under each weight alone. Per-prompt steering (the
Spearman correlation between ``w_k`` and ``r_k`` over one prompt's sweep, see
:func:`~pareto_lightning.metrics.functional.prompt_spearman`) is a property of exactly that difference.

For the rows ``i`` of one prompt ``p``, answered under weights ``w_i`` with rewards ``r_i``, the per-prompt
covariance between weights and rewards is ``C_p = mean_i sum_k (w_ik - mean_p w_k) (r_ik - mean_p r_k)``. Each
row's term

    c_i = sum_k (w_ik - mean_p w_k) (r_ik - mean_p r_k)

is its share of ``C_p``. Used as a policy-gradient advantage (REINFORCE with the prompt's mean reward as baseline;
Williams, 1992), ``c_i`` ascends ``C_p``: as ``sum_i c_i = sum_i (w_i - mean_p w) . r_i``, the expectation of
``sum_i c_i grad log pi(y_i)`` over the ``n`` rows is exactly ``(1 - 1/n)`` times the gradient of ``n C_p`` (the
baseline holds a ``1/n`` share of each row's own reward). A completion is pushed up when it leans the way its ``w``
leans away from the prompt's other weights, and down when it leans the other way. A prompt answered under one
weight only has ``c_i = 0``. The identity holds for ``scale="none"`` and rewards that each depend only on their own
completion (no normalizer updated on the same batch); the root-mean-square scale makes the step size relative.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

_RMS_EPS = 1e-4  # as the group advantages' std (losses/grpo.py)


def prompt_index(prompts: list[str]) -> Tensor:
    """``[N]`` the index of each row's prompt among the distinct prompts, in order of first appearance.

    Example:
        >>> prompt_index(["sky", "sky", "kite", "sky"])
        tensor([0, 0, 1, 0])
    """
    first: dict[str, int] = {}
    return torch.tensor([first.setdefault(p, len(first)) for p in prompts], dtype=torch.long)


def cross_weight_advantages(
    rewards: Tensor, weights: Tensor, prompts: Tensor, scale: Literal["group", "batch", "none"] = "batch"
) -> Tensor:
    """``c_i = sum_k (w_ik - mean_p w_k) (r_ik - mean_p r_k)``, the means over the rows of row ``i``'s prompt.

    Args:
        rewards: ``[N, K]`` rewards (normalized, as the scalarizer sees them).
        weights: ``[N, K]`` the weights each row was generated under.
        prompts: ``[N]`` prompt index of each row (:func:`prompt_index`).
        scale: ``"group"`` or ``"batch"``: divided by the root mean square of all ``N`` values (``+ 1e-4``), so
            the term is on the scale of the normalized group advantages it is added to (not by their std: a
            prompt's rows under two mirrored weights share one value, and a std of 0 would blow it up). Rows of a
            prompt that drew the same weight every time count as zeros in it, so they raise the other rows'
            terms, and a batch whose covariances are all small is scaled up like one whose are large, as the
            group std does to the group advantages; ``"none"``: as is, in reward units (beside Dr. GRPO's
            unscaled advantages).

    Returns:
        ``[N]`` advantages in float32 (or float64 for float64 rewards), zero for every prompt answered under a
        single weight. Rows with the same prompt index are one prompt, however they were drawn.

    Example:
        >>> r = torch.tensor([[0.9, 0.1], [0.3, 0.7], [0.5, 0.5]])  # two rows of prompt 0, one of prompt 1
        >>> w = torch.tensor([[0.8, 0.2], [0.2, 0.8], [1.0, 0.0]])  # prompt 0: mean w (0.5, 0.5), mean r (0.6, 0.4)
        >>> cross_weight_advantages(r, w, torch.tensor([0, 0, 1]), scale="none")  # 0.3*0.3 + (-0.3)*(-0.3)
        tensor([0.1800, 0.1800, 0.0000])
    """
    if rewards.shape != weights.shape or rewards.ndim != 2 or prompts.shape != rewards.shape[:1]:
        raise ValueError(
            f"rewards and weights must be [N, K] and prompts [N]; got {tuple(rewards.shape)}, "
            f"{tuple(weights.shape)} and {tuple(prompts.shape)}."
        )
    if scale not in ("group", "batch", "none"):
        raise ValueError(f"`scale` must be 'group', 'batch' or 'none'; got {scale!r}.")
    rewards = (
        rewards if rewards.dtype == torch.float64 else rewards.float()
    )  # bf16 sums would lose the spread
    weights, prompts = weights.to(rewards), prompts.to(rewards.device)
    if len(rewards) == 0:
        return rewards.new_zeros(0)
    count = torch.zeros(int(prompts.max()) + 1, device=rewards.device, dtype=rewards.dtype)
    count = count.index_add(0, prompts, torch.ones_like(prompts, dtype=rewards.dtype))  # [P]

    def centred(values: Tensor) -> Tensor:  # [N, K] minus the mean over the rows of each one's prompt
        sums = torch.zeros(len(count), values.shape[1], dtype=values.dtype, device=values.device)
        return values - (sums.index_add(0, prompts, values) / count.unsqueeze(-1))[prompts]

    terms = (centred(weights) * centred(rewards)).sum(-1)  # [N]
    if scale == "none":
        return terms
    return terms / (terms.square().mean().sqrt() + _RMS_EPS)


__all__ = ["cross_weight_advantages", "prompt_index"]
