"""Group Relative Policy Optimization (GRPO): group-relative advantages and the clipped-ratio loss.

Shao et al., "DeepSeekMath: Pushing the Limits of Mathematical Reasoning in Open Language Models" (2024),
section 4.1, used by the paper from section 2.3 on. For a prompt ``q`` the policy samples ``G`` completions
``o_1..o_G`` with utilities ``u_1..u_G`` (scalarized rewards) and maximizes

    J = mean_i 1/|o_i| sum_t [ min(rho_it A_i, clip(rho_it, 1 - eps, 1 + eps) A_i) - beta KL_it ],
    rho_it = pi(o_it | q, o_i<t) / pi_old(o_it | q, o_i<t),      A_i = (u_i - mean(u)) / std(u),

with the per-token KL term estimated by Schulman's k3 estimator ``exp(d) - d - 1`` with
``d = log pi_ref - log pi`` ("Approximating KL Divergence", 2020; DeepSeekMath eq. 4): never negative, and
unbiased for ``KL(pi || pi_ref)`` on tokens sampled from ``pi``. Variants exposed as options: the
asymmetric "clip-higher" bound ``eps_high`` and the token-level mean of DAPO (Yu et al., 2025), and
advantages without the std division of Dr. GRPO (Liu et al., "Understanding R1-Zero-Like Training: A
Critical Perspective", 2025).
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
from torch import Tensor

from pareto_lightning.losses.groups import check_groups, grouped, tied_groups

_STD_EPS = 1e-4  # added to the std before dividing (TRL's GRPOTrainer uses the same constant)


def grpo_hyperparameter_problems(
    epsilon: float = 0.2,
    epsilon_high: float | None = None,
    beta: float = 0.0,
    aggregation: str = "sequence_mean",
    advantage_scale: str = "group",
) -> list[str]:
    """What is wrong with GRPO's hyperparameters, one line per problem (empty when all are valid).

    Each line names its argument in backticks; a configuration boundary replaces those names by the keys its
    users type.

    Example:
        >>> grpo_hyperparameter_problems(beta=-1.0, aggregation="sum")
        ['`beta` must be >= 0; got -1.0', "`aggregation` must be 'sequence_mean' or 'token_mean'; got 'sum'"]
        >>> grpo_hyperparameter_problems()
        []
    """
    problems = []
    if not epsilon > 0 or (epsilon_high is not None and not epsilon_high > 0):
        problems.append(f"`epsilon` and `epsilon_high` must be > 0; got {epsilon} and {epsilon_high}")
    if not beta >= 0:
        problems.append(f"`beta` must be >= 0; got {beta}")
    if aggregation not in ("sequence_mean", "token_mean"):
        problems.append(f"`aggregation` must be 'sequence_mean' or 'token_mean'; got {aggregation!r}")
    if advantage_scale not in ("group", "batch", "none"):
        problems.append(f"`advantage_scale` must be 'group', 'batch' or 'none'; got {advantage_scale!r}")
    return problems


def group_advantages(
    utilities: Tensor, group_size: int, scale: Literal["group", "batch", "none"] = "group"
) -> Tensor:
    """Group-relative advantages ``A_i = (u_i - mean_group(u)) / (std + 1e-4)``.

    Rows are grouped consecutively: rows ``0..G-1`` are prompt 0's completions, ``G..2G-1`` prompt 1's, etc.
    The std is Bessel-corrected (``sum (u - mean)^2 / (n - 1)``), the convention of ``torch.std`` and of TRL's
    ``GRPOTrainer``; ``1e-4`` keeps the division finite. ``scale`` picks the std:

    * ``"group"``: the group's own std (GRPO, Shao et al. 2024);
    * ``"batch"``: the std of all ``B * G`` utilities (less noisy for small ``G``);
    * ``"none"``: no division, only centering (Dr. GRPO, Liu et al. 2025: the std division over-weights
      groups that are almost solved or almost failed).

    A group whose utilities are all equal (spread at most ``TIE_TOL = 1e-8``, see
    :func:`~pareto_lightning.losses.groups.tied_groups`) carries no preference among its completions and gets
    exactly zero advantage (never NaN), whatever ``scale``.

    Args:
        utilities: ``[B*G]`` scalarized rewards (larger is better).
        group_size: ``G``, completions per prompt (``num_generations``), >= 2.
        scale: ``"group"``, ``"batch"`` or ``"none"``.

    Returns:
        ``[B*G]`` advantages, same dtype as ``utilities``.

    Raises:
        ValueError: ``group_size < 2``, ``utilities`` not 1-D or not divisible into groups, unknown ``scale``.
        TypeError: non-floating ``utilities``.

    Example:
        >>> u = torch.tensor([1.0, 2.0, 3.0, 5.0, 5.0, 5.0])  # two prompts, G = 3
        >>> group_advantages(u, 3)  # group 0: mean 2, std 1; group 1: all equal
        tensor([-0.9999,  0.0000,  0.9999,  0.0000,  0.0000,  0.0000])
        >>> group_advantages(u, 3, scale="none")
        tensor([-1.,  0.,  1.,  0.,  0.,  0.])
    """
    check_groups(utilities, group_size)
    problems = grpo_hyperparameter_problems(advantage_scale=scale)
    if problems:
        raise ValueError(problems[0] + " (the `scale` argument).")
    rows = grouped(utilities, group_size)  # [B, G]
    centered = rows - rows.mean(-1, keepdim=True)  # [B, G]
    if scale == "group":
        centered = centered / (rows.std(-1, keepdim=True) + _STD_EPS)  # [B, G]
    elif scale == "batch":
        centered = centered / (utilities.std() + _STD_EPS)
    # The mean of equal floats need not round back to the same float: force exact zeros for tied groups.
    tied = tied_groups(utilities, group_size).unsqueeze(-1)  # [B, 1]
    return torch.where(tied, torch.zeros_like(centered), centered).reshape(-1)


def zero_spread_fraction(utilities: Tensor, group_size: int) -> float:
    """Fraction of groups whose utilities are all equal (tied, ``max - min <= 1e-8``): they get zero advantage.

    A rising value is an early sign of collapse: once a policy's completions for a prompt are identical, GRPO
    stops learning on that prompt.

    Args:
        utilities: ``[B*G]`` scalarized rewards, rows of one prompt consecutive.
        group_size: ``G`` (``num_generations``), >= 2.

    Returns:
        A float in ``[0, 1]``.

    Raises:
        ValueError, TypeError: as :func:`group_advantages`.

    Example:
        >>> zero_spread_fraction(torch.tensor([1.0, 2.0, 5.0, 5.0]), 2)
        0.5
    """
    check_groups(utilities, group_size)
    return tied_groups(utilities, group_size).float().mean().item()


class GRPOStats(NamedTuple):
    """Detached diagnostics of :func:`grpo_loss` (0-d tensors).

    Attributes:
        kl: mean of the k3 KL estimate over the masked tokens (0 without a reference).
        clip_fraction: fraction of masked tokens where the clipped term was the active (smaller) one, i.e.
            ``rho > 1 + eps_high`` with ``A > 0`` or ``rho < 1 - eps`` with ``A < 0``: these give no gradient.
        advantage_mean: mean of the advantages over the ``N`` sequences.
        advantage_std: population std (no Bessel correction, so finite for ``N = 1``) of the advantages.
        ratio_mean: mean of ``rho`` over the masked tokens.

    Example:
        >>> GRPOStats(*torch.zeros(5))._fields
        ('kl', 'clip_fraction', 'advantage_mean', 'advantage_std', 'ratio_mean')
    """

    kl: Tensor
    clip_fraction: Tensor
    advantage_mean: Tensor
    advantage_std: Tensor
    ratio_mean: Tensor


def _check_grpo_inputs(
    logp: Tensor,
    old_logp: Tensor,
    ref_logp: Tensor | None,
    advantages: Tensor,
    mask: Tensor,
    epsilon: float,
    epsilon_high: float | None,
    beta: float,
    aggregation: str,
) -> None:
    problems = grpo_hyperparameter_problems(epsilon, epsilon_high, beta, aggregation)
    if problems:
        raise ValueError(problems[0] + ".")
    if ref_logp is None and beta > 0:
        raise ValueError(f"`ref_logp` is required when `beta` > 0 (got beta={beta}); pass it or set beta=0.")
    if logp.ndim != 2:
        raise ValueError(f"`logp` must be [N, T] per-token log-probs; got shape {tuple(logp.shape)}.")
    named = {"old_logp": old_logp, "ref_logp": ref_logp, "mask": mask}
    for name, value in named.items():
        if value is not None and value.shape != logp.shape:
            raise ValueError(
                f"`{name}` must have the shape of `logp` {tuple(logp.shape)}; got {tuple(value.shape)}."
            )
    if advantages.shape != logp.shape[:1]:
        raise ValueError(
            f"`advantages` must be [N] = [{logp.shape[0]}]; got shape {tuple(advantages.shape)}."
        )


def grpo_loss(
    logp: Tensor,
    old_logp: Tensor,
    ref_logp: Tensor | None,
    advantages: Tensor,
    mask: Tensor,
    epsilon: float = 0.2,
    epsilon_high: float | None = None,
    beta: float = 0.0,
    aggregation: Literal["sequence_mean", "token_mean"] = "sequence_mean",
) -> tuple[Tensor, GRPOStats]:
    """GRPO clipped-ratio loss with a k3 KL penalty (the negated objective in the module docstring).

    Per masked token, with ``rho = exp(logp - old_logp)`` and ``d = ref_logp - logp``::

        l_t = -min(rho A, clip(rho, 1 - epsilon, 1 + epsilon_high) A) + beta (exp(d) - d - 1)

    Worked cases (``epsilon = 0.2``): ``rho = 1`` gives ``l = -A`` (the policy gradient); ``rho = 1.5, A = 1``
    gives ``-min(1.5, 1.2) = -1.2``, the clipped term, constant in ``logp`` (no gradient);
    ``rho = 0.5, A = -1`` gives ``-min(-0.5, -0.8) = 0.8``, again clipped; ``rho = 0.5, A = 1`` gives
    ``-0.5``: the unclipped term is the smaller one, so it keeps its gradient. ``d = ln 2`` gives
    ``k3 = 2 - ln 2 - 1 = 0.3069``.

    Aggregation: ``"sequence_mean"`` averages each sequence's masked tokens, then the sequences
    (DeepSeekMath's ``1/G sum_i 1/|o_i| sum_t``); ``"token_mean"`` divides the sum over all masked tokens by
    their count (DAPO), so long completions weigh more. A sequence with no masked token counts as 0 (its token
    count is clamped at 1): no NaN, and under ``"sequence_mean"`` it still counts in the batch mean.
    Masked-out positions are zeroed before any ``exp``, so padding may hold any value (even ``-inf``) without
    NaN in the loss or its gradient. The loss is *not* divided by the number of gradient-accumulation steps
    (Lightning does that).

    Args:
        logp: ``[N, T]`` per-token log-probs under the current policy (with grad).
        old_logp: ``[N, T]`` log-probs under the sampling policy (``logp.detach()`` with one update per
            rollout).
        ref_logp: ``[N, T]`` log-probs under the reference model, or ``None`` (only when ``beta == 0``).
        advantages: ``[N]`` one advantage per sequence (see :func:`group_advantages`).
        mask: ``[N, T]`` bool or 0/1: which positions are completion tokens.
        epsilon: lower clip ``1 - epsilon``, > 0.
        epsilon_high: upper clip ``1 + epsilon_high`` (DAPO's clip-higher); ``None`` means ``epsilon``.
        beta: KL coefficient, >= 0.
        aggregation: ``"sequence_mean"`` or ``"token_mean"``.

    Returns:
        ``(loss, stats)``: the 0-d loss to minimize and the detached :class:`GRPOStats`.

    Raises:
        ValueError: non-positive ``epsilon``/``epsilon_high``, negative ``beta``, unknown ``aggregation``,
            ``ref_logp is None`` with ``beta > 0``, mismatched shapes.

    Example:
        >>> logp = torch.zeros(2, 3, requires_grad=True)
        >>> mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
        >>> loss, stats = grpo_loss(logp, logp.detach(), None, torch.tensor([1.0, -1.0]), mask)
        >>> loss  # rho = 1: mean over sequences of -A = (-1 + 1) / 2
        tensor(0., grad_fn=<MeanBackward0>)
        >>> stats.ratio_mean
        tensor(1.)
    """
    _check_grpo_inputs(logp, old_logp, ref_logp, advantages, mask, epsilon, epsilon_high, beta, aggregation)
    eps_high = epsilon if epsilon_high is None else epsilon_high
    valid = mask.bool()  # [N, T]
    weight = valid.to(logp.dtype)  # [N, T]
    # Zero the log-ratio on padding first: exp(garbage) there would turn 0 * inf into NaN, also in backward.
    log_ratio = torch.where(valid, logp - old_logp, torch.zeros_like(logp))  # [N, T]
    ratio = torch.exp(log_ratio)  # [N, T]
    adv = advantages.to(logp.dtype).unsqueeze(-1)  # [N, 1]
    unclipped = ratio * adv  # [N, T]
    clipped = torch.clamp(ratio, 1.0 - epsilon, 1.0 + eps_high) * adv  # [N, T]
    per_token = -torch.minimum(unclipped, clipped)  # [N, T]

    num_tokens = weight.sum().clamp(min=1.0)
    kl = torch.zeros((), dtype=logp.dtype, device=logp.device)
    if ref_logp is not None:
        d = torch.where(valid, ref_logp - logp, torch.zeros_like(logp))  # [N, T]
        k3 = torch.exp(d) - d - 1.0  # [N, T] >= 0, zero on padding
        kl = (k3 * weight).sum() / num_tokens
        if beta > 0:
            per_token = per_token + beta * k3

    per_token = per_token * weight  # [N, T]
    if aggregation == "sequence_mean":
        loss = (per_token.sum(-1) / weight.sum(-1).clamp(min=1.0)).mean()
    else:
        loss = per_token.sum() / num_tokens

    with torch.no_grad():
        # The clipped term is active exactly when it is strictly smaller than the unclipped one.
        clip_active = ((adv > 0) & (ratio > 1.0 + eps_high)) | ((adv < 0) & (ratio < 1.0 - epsilon))  # [N, T]
        stats = GRPOStats(
            kl=kl.detach(),
            clip_fraction=(clip_active.to(logp.dtype) * weight).sum() / num_tokens,
            advantage_mean=adv.mean(),
            advantage_std=adv.std(correction=0),
            ratio_mean=(ratio * weight).sum() / num_tokens,
        )
    return loss, stats


__all__ = [
    "GRPOStats",
    "group_advantages",
    "grpo_hyperparameter_problems",
    "grpo_loss",
    "zero_spread_fraction",
]
