"""Per-token log-probabilities of given tokens under a causal LM's logits, without a full log-softmax copy.

``log softmax(z / tau)[y] = z[y] / tau - logsumexp(z / tau)``: only the target logit and the normalizer are
needed, so the ``[N, T, V]`` log-softmax tensor (the largest activation of an LM step with a big vocabulary)
is never materialized. The normalizer is computed one sequence at a time in float32, so a bfloat16/float16
model allocates (under ``torch.no_grad``) one ``[T, V]`` float32 temporary at a time, not an ``[N, T, V]``
copy.
"""

from __future__ import annotations

import torch
from torch import Tensor


def token_log_probs(logits: Tensor, targets: Tensor, temperature: float = 1.0) -> Tensor:
    """Log-probability of each target token: ``log_softmax(logits / temperature)`` gathered at ``targets``.

    Computed as ``logits[y] / tau - logsumexp(logits / tau)`` in float32, the logsumexp row by row (one
    sequence at a time), so no full ``[N, T, V]`` log-softmax (nor, for half-precision logits, a full float32
    copy) is created. Dividing by the sampling temperature makes the log-probs those of the distribution the
    completions were sampled from. For a float32 input with ``temperature == 1`` nothing of size ``V`` is
    copied at all. Autograd still keeps what the backward pass of ``logsumexp`` needs; the saving is in the
    forward pass (e.g. the no-grad reference model) and in the absence of the extra log-softmax tensor.

    Args:
        logits: ``[N, T, V]`` next-token logits, position ``t`` scoring ``targets[:, t]``.
        targets: ``[N, T]`` integer token ids in ``[0, V)``.
        temperature: softmax temperature, > 0 (``1.0`` = the raw logits).

    Returns:
        ``[N, T]`` float32 log-probabilities (``<= 0``).

    Raises:
        ValueError: wrong ranks or mismatched ``[N, T]``, or ``temperature <= 0``.
        TypeError: ``targets`` is not an integer tensor.

    Example:
        >>> logits = torch.log(torch.tensor([[[0.5, 0.25, 0.25], [0.1, 0.8, 0.1]]]))  # [1, 2, 3]
        >>> token_log_probs(logits, torch.tensor([[0, 1]])).exp()
        tensor([[0.5000, 0.8000]])
    """
    if not temperature > 0:
        raise ValueError(f"`temperature` must be > 0 (the policy's sampling temperature); got {temperature}.")
    if logits.ndim != 3 or targets.ndim != 2 or logits.shape[:2] != targets.shape:
        raise ValueError(
            f"`logits` must be [N, T, V] and `targets` [N, T] with the same N and T; "
            f"got logits {tuple(logits.shape)} and targets {tuple(targets.shape)}."
        )
    if targets.dtype.is_floating_point or targets.dtype == torch.bool:
        raise TypeError(f"`targets` must hold integer token ids (torch.long); got dtype {targets.dtype}.")
    picked = logits.gather(-1, targets.unsqueeze(-1).long()).squeeze(-1).float() / temperature  # [N, T]
    if logits.shape[0] == 0:
        return picked
    # One sequence at a time: the float32 temporary of ``row / temperature`` is [T, V], never [N, T, V].
    normalizer = torch.stack([torch.logsumexp(_scaled(row, temperature), dim=-1) for row in logits])  # [N, T]
    return picked - normalizer


def _scaled(row: Tensor, temperature: float) -> Tensor:
    """``row / temperature`` in float32; no copy for a float32 row at temperature 1."""
    row = row.float()  # [T, V]
    return row if temperature == 1.0 else row / temperature


__all__ = ["token_log_probs"]
