"""Direct preference losses on chosen/rejected pairs: DPO (sigmoid) and IPO.

MO-ODPO (paper section 2.2; Gupta et al., 2025) samples completions under a preference ``w``, ranks them by
the scalarized utility and applies the DPO loss of Rafailov et al., "Direct Preference Optimization: Your
Language Model is Secretly a Reward Model" (2023), eq. 7. With sequence log-probs ``pi`` (policy) and
``ref`` (reference) of the chosen ``c`` and rejected ``r`` completion, the implicit reward of a completion
is ``beta (log pi(y) - log ref(y))`` and

    h = (log pi(c) - log ref(c)) - (log pi(r) - log ref(r)),
    sigmoid (DPO):  l = -log sigmoid(beta h),
    ipo:            l = (h - 1 / (2 beta))^2,

the latter from Azar et al., "A General Theoretical Paradigm to Understand Learning from Human Preferences"
(2024), eq. 17 (their ``tau`` is our ``beta``): a squared loss that pulls ``h`` to a finite target instead of
pushing it to infinity, so it does not overfit deterministic preferences.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor


class DPOStats(NamedTuple):
    """Detached diagnostics of :func:`dpo_loss` over the valid pairs (0-d tensors; 0 without a valid pair).

    Attributes:
        reward_margin: mean implicit-reward margin ``beta h``.
        accuracy: fraction of pairs with ``h > 0`` (the chosen completion gained more than the rejected one).
        chosen_reward: mean ``beta (log pi(c) - log ref(c))``.
        rejected_reward: mean ``beta (log pi(r) - log ref(r))``.
        num_pairs: number of valid pairs (int64).

    Example:
        >>> DPOStats(*torch.zeros(5))._fields
        ('reward_margin', 'accuracy', 'chosen_reward', 'rejected_reward', 'num_pairs')
    """

    reward_margin: Tensor
    accuracy: Tensor
    chosen_reward: Tensor
    rejected_reward: Tensor
    num_pairs: Tensor


def dpo_hyperparameter_problems(beta: float = 0.1, loss_type: str = "sigmoid") -> list[str]:
    """What is wrong with DPO's hyperparameters, one line per problem (empty when both are valid).

    Each line names its argument in backticks; a configuration boundary replaces those names by the keys its
    users type.

    Example:
        >>> dpo_hyperparameter_problems(beta=0.0, loss_type="hinge")
        ['`beta` must be > 0 for DPO/IPO; got 0.0', "`loss_type` must be 'sigmoid' or 'ipo'; got 'hinge'"]
    """
    problems = []
    if not beta > 0:
        problems.append(f"`beta` must be > 0 for DPO/IPO; got {beta}")
    if loss_type not in ("sigmoid", "ipo"):
        problems.append(f"`loss_type` must be 'sigmoid' or 'ipo'; got {loss_type!r}")
    return problems


def dpo_loss(
    policy_chosen: Tensor,
    policy_rejected: Tensor,
    ref_chosen: Tensor,
    ref_rejected: Tensor,
    beta: float = 0.1,
    loss_type: Literal["sigmoid", "ipo"] = "sigmoid",
    mask: Tensor | None = None,
) -> tuple[Tensor, DPOStats]:
    """DPO or IPO loss, averaged over the valid pairs.

    ``h = (policy_chosen - ref_chosen) - (policy_rejected - ref_rejected)``; ``"sigmoid"`` gives
    ``-log sigmoid(beta h)`` and ``"ipo"`` gives ``(h - 1 / (2 beta))^2`` (see the module docstring). Worked
    values: at ``h = 0`` (policy equal to the reference) DPO gives ``log 2 = 0.6931`` and IPO
    ``1 / (4 beta^2)`` (25 for ``beta = 0.1``); DPO with ``beta = 0.1, h = 10`` gives
    ``log(1 + e^-1) = 0.3133``.

    Inputs are sequence log-prob *sums* over the completion tokens. Implementations of IPO often pass
    per-token *averages* instead (e.g. TRL length-normalizes for IPO), which puts ``h`` on a per-token scale
    where the target ``1 / (2 beta)`` means something different; this function uses whatever it is given, so a
    caller wanting that variant passes averages, and ``beta`` must be tuned for the scale chosen.

    ``mask`` marks the valid pairs; a pair whose two completions have equal utility carries no preference and
    the caller passes ``False`` for it. The loss is the mean over valid pairs, and exactly 0 when there is
    none, still connected to the inputs (zero gradient) so that every rank runs the same backward pass.

    Args:
        policy_chosen: ``[N]`` log-prob sums of the chosen completions under the policy (with grad).
        policy_rejected: ``[N]`` same for the rejected completions.
        ref_chosen: ``[N]`` log-prob sums of the chosen completions under the reference.
        ref_rejected: ``[N]`` same for the rejected completions.
        beta: inverse temperature of the implicit reward (DPO) or IPO's regularization ``tau``, > 0.
        loss_type: ``"sigmoid"`` (DPO) or ``"ipo"``.
        mask: ``[N]`` bool or 0/1; ``None`` means every pair is valid.

    Returns:
        ``(loss, stats)``: the 0-d loss to minimize and the detached :class:`DPOStats`.

    Raises:
        ValueError: ``beta <= 0``, unknown ``loss_type``, inputs not 1-D of one shape.

    Example:
        >>> zero = torch.zeros(2, requires_grad=True)
        >>> loss, stats = dpo_loss(zero, zero, zero.detach(), zero.detach())
        >>> round(loss.item(), 4)  # h = 0: log 2
        0.6931
        >>> stats.num_pairs
        tensor(2)
    """
    problems = dpo_hyperparameter_problems(beta, loss_type)
    if problems:
        raise ValueError(problems[0] + ".")
    named = {"policy_rejected": policy_rejected, "ref_chosen": ref_chosen, "ref_rejected": ref_rejected}
    if mask is not None:
        named["mask"] = mask
    shapes = {name: tuple(t.shape) for name, t in named.items()}
    if policy_chosen.ndim != 1 or any(s != tuple(policy_chosen.shape) for s in shapes.values()):
        raise ValueError(
            f"`policy_chosen`, `policy_rejected`, `ref_chosen`, `ref_rejected` (and `mask`) must be 1-D "
            f"[N] of "
            f"one shape; got policy_chosen {tuple(policy_chosen.shape)} and {shapes}."
        )
    valid = torch.ones_like(policy_chosen, dtype=torch.bool) if mask is None else mask.bool()  # [N]
    chosen = policy_chosen - ref_chosen  # [N] log-ratio of the chosen completion
    rejected = policy_rejected - ref_rejected  # [N]
    # Zero invalid pairs before the nonlinearity so that nothing non-finite there can leak NaN into backward.
    h = torch.where(valid, chosen - rejected, torch.zeros_like(chosen))  # [N]
    if loss_type == "sigmoid":
        losses = -F.logsigmoid(beta * h)  # [N]
    else:
        losses = (h - 1.0 / (2.0 * beta)) ** 2  # [N]
    num_pairs = valid.sum()
    count = num_pairs.clamp(min=1).to(losses.dtype)
    loss = torch.where(valid, losses, torch.zeros_like(losses)).sum() / count  # 0 (with grad) if none valid

    with torch.no_grad():

        def mean_valid(x: Tensor) -> Tensor:
            return torch.where(valid, x, torch.zeros_like(x)).sum() / count

        stats = DPOStats(
            reward_margin=mean_valid(beta * h),
            accuracy=mean_valid((h > 0).to(h.dtype)),
            chosen_reward=mean_valid(beta * chosen),
            rejected_reward=mean_valid(beta * rejected),
            num_pairs=num_pairs,
        )
    return loss, stats


__all__ = ["DPOStats", "dpo_hyperparameter_problems", "dpo_loss"]
