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
    targets = targets.long()
    if logits.shape[0] == 0:
        return logits.new_zeros(targets.shape, dtype=torch.float32)
    # One sequence at a time: the float32 temporary of ``row / temperature`` is [T, V], never [N, T, V].
    rows = zip(logits, targets, strict=True)
    return torch.stack([rows_log_probs(row, y, temperature)[0] for row, y in rows])  # [N, T]


def rows_log_probs(
    logits: Tensor, targets: Tensor, temperature: float, overwrite: bool = False
) -> tuple[Tensor, Tensor]:
    """``log_softmax(logits / temperature)[y]`` of ``R`` rows, and each row's normalizer, in float32.

    The one place the formula ``z[y] / tau - logsumexp(z / tau)`` lives; :func:`token_log_probs` applies it one
    sequence at a time, :func:`~pareto_lightning.losses.chunked_logprobs.chunked_token_log_probs` one chunk of
    tokens at a time (and keeps the normalizer for its backward pass). No input checks: callers check once.

    Args:
        logits: ``[R, V]`` logits (any float dtype).
        targets: ``[R]`` long token ids.
        temperature: softmax temperature, > 0.
        overwrite: the caller gives up ``logits`` (no autograd): they are scaled and exponentiated in place, so
            the only ``[R, V]`` float32 buffer is their own (or their float32 copy). False keeps them intact.

    Returns:
        ``([R] log-probs, [R] logsumexp(logits / temperature))``, both float32.

    Example:
        >>> logits = torch.log(torch.tensor([[0.5, 0.25, 0.25]]))  # [R=1, V=3]
        >>> logp, normalizer = rows_log_probs(logits, torch.tensor([1]), 1.0)
        >>> logp.exp(), normalizer.abs() < 1e-6
        (tensor([0.2500]), tensor([True]))
    """
    picked = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1).float() / temperature  # [R]
    scaled = scaled_logits(logits, temperature, overwrite)  # [R, V] float32
    normalizer = _logsumexp_(scaled) if overwrite else torch.logsumexp(scaled, dim=-1)  # [R]
    return picked - normalizer, normalizer


def scaled_logits(logits: Tensor, temperature: float, overwrite: bool = False) -> Tensor:
    """``logits / temperature`` in float32; no copy for float32 logits at temperature 1, nor with ``overwrite``
    (float32 ``logits`` are then divided in place)."""
    scaled = logits.float()  # [R, V]: the logits themselves when float32, else a copy
    if temperature == 1.0:
        return scaled
    return scaled.div_(temperature) if overwrite else scaled / temperature


def _logsumexp_(scaled: Tensor) -> Tensor:
    """``torch.logsumexp(scaled, -1)`` without ``[R, V]`` temporaries: ``scaled`` becomes ``exp(scaled - max)``."""
    top = scaled.amax(-1, keepdim=True)  # [R, 1]
    top = top.masked_fill(top.isinf(), 0.0)  # as torch.logsumexp does for rows whose maximum is infinite
    return scaled.sub_(top).exp_().sum(-1).log_().add_(top.squeeze(-1))  # [R]


__all__ = ["rows_log_probs", "scaled_logits", "token_log_probs"]
