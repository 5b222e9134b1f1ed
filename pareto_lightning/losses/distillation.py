"""Best-of-pool selection and mixture distillation: the maths of a supervised stage that teaches a chat model to
read the preference line (``recipes/smollm2/preference_stage.py`` runs it).

1. **Select** (:func:`best_of_pool`). For each prompt and preference ``w``, keep the pooled completion that
   maximizes the scalarized utility ``S(r, w)``: best-of-``n`` under the training objective, as in
   rejection-sampling fine-tuning (Dong et al., "RAFT", 2023).
2. **Distill** (:func:`mixture_distillation_loss`). On each kept completion, match token by token the
   ``w``-weighted product of the teachers' next-token distributions (context distillation, Snell et al., 2022,
   with a product of experts as the teacher).

Both are plain torch, with no model or tokenizer.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def best_of_pool(rewards: Tensor, weights: Tensor, scalarize: Callable[[Tensor, Tensor], Tensor]) -> Tensor:
    """For each prompt and preference, the index of the pool completion with the largest utility.

    Args:
        rewards: ``[P, N, K]`` rewards of ``N`` pooled completions per prompt.
        weights: ``[P, M, K]`` preferences, ``M`` per prompt.
        scalarize: ``S(rewards [..., K], weights [..., K]) -> [...]``, larger is better (a ``Scalarizer``).

    Returns:
        ``[P, M]`` indices into each prompt's pool (the first one on ties).

    Example (completion 0 is simple, 1 technical, 2 in between; the linear utility picks by ``w``):
        >>> r = torch.tensor([[[0.9, 0.1], [0.1, 0.9], [0.6, 0.6]]])
        >>> w = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]])
        >>> best_of_pool(r, w, lambda r, w: (r * w).sum(-1)).tolist()
        [[0, 1, 2]]
    """
    if rewards.dim() != 3 or weights.dim() != 3 or rewards.shape[0] != weights.shape[0]:
        raise ValueError(
            f"best_of_pool needs rewards [P, N, K] and weights [P, M, K] with the same P; got "
            f"{tuple(rewards.shape)} and {tuple(weights.shape)}."
        )
    if rewards.shape[-1] != weights.shape[-1]:
        raise ValueError(
            f"best_of_pool: rewards have K={rewards.shape[-1]} objectives but weights K={weights.shape[-1]}."
        )
    utility = scalarize(rewards[:, None, :, :], weights[:, :, None, :])  # [P, M, N]
    return utility.argmax(-1)


def mixture_distillation_loss(
    student: Tensor, teachers: Tensor, weights: Tensor, mask: Tensor, temperature: float = 1.0
) -> Tensor:
    """Mean per-token ``KL(p_w || q)`` from the ``w``-weighted product of the teachers to the student.

    ``p_w = softmax(sum_k w_k z_k / tau)`` mixes the teachers' logits ``z_k`` (a product of experts, as in
    "language model arithmetic", Dekoninck et al., 2024): at a vertex it is teacher ``k`` itself, in between a
    geometric blend. ``q = softmax(z / tau)`` is the student; ``tau`` the sampling temperature. The mean is over
    the tokens where ``mask`` is 1.

    Args:
        student: ``[b, T, V]`` student logits.
        teachers: ``[K, b, T, V]`` teacher logits (teacher ``k`` is the model under objective ``k``'s instruction).
        weights: ``[b, K]`` preferences.
        mask: ``[b, T]`` 1 on the completion tokens to count.
        temperature: ``tau`` > 0.

    Example (one token, two words; the even blend of logits ``(0, 0)`` and ``(ln 3, 0)`` is ``(ln 3 / 2, 0)``,
    so ``p = (0.634, 0.366)``; against a uniform student the KL is ``0.634 ln 1.268 + 0.366 ln 0.732``):
        >>> import math
        >>> z = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0]]).view(2, 1, 1, 2)
        >>> loss = mixture_distillation_loss(torch.zeros(1, 1, 2), z, torch.tensor([[0.5, 0.5]]), torch.ones(1, 1))
        >>> round(loss.item(), 4)
        0.0363
    """
    if not temperature > 0:
        raise ValueError(f"mixture_distillation_loss: temperature must be > 0; got {temperature!r}.")
    shapes_agree = teachers.dim() == 4 and teachers.shape[1:] == student.shape
    if not shapes_agree or tuple(weights.shape) != (student.shape[0], teachers.shape[0]):
        raise ValueError(
            f"mixture_distillation_loss needs student [b, T, V], teachers [K, b, T, V] and weights [b, K]; got "
            f"{tuple(student.shape)}, {tuple(teachers.shape)} and {tuple(weights.shape)}."
        )
    target = torch.einsum("kbtv,bk->btv", teachers.float(), weights.float()) / temperature  # [b, T, V]
    log_p = torch.log_softmax(target, -1)  # [b, T, V]
    log_q = torch.log_softmax(student.float() / temperature, -1)  # [b, T, V]
    kl = (log_p.exp() * (log_p - log_q)).sum(-1)  # [b, T]
    return (kl * mask).sum() / mask.sum().clamp_min(1)


__all__ = ["best_of_pool", "mixture_distillation_loss"]
