"""Per-token log-probabilities straight from the last hidden state and the output layer, chunk by chunk.

``log_softmax((h W^T + b) / tau)[y]`` for every position of an ``[N, T, H]`` hidden state, without the ``[N, T, V]``
logits ever existing: the positions are taken ``chunk_size`` at a time, each chunk's ``[chunk, V]`` logits are
formed, reduced to one log-probability per position and dropped. The backward pass forms them again, chunk by
chunk, and turns them into the gradients of ``h``, ``W`` and ``b`` at once, so neither pass holds more than one
chunk's logits (plus the ``[V, H]`` weight gradient). It costs one extra ``h W^T`` product in the backward pass.

The values and gradients are those of the full computation (``token_log_probs`` on ``h W^T + b``): the logits are
formed in the compute dtype (the autocast dtype when autocast is on, else the inputs' dtype), reduced in float32;
the weight gradient is summed over chunks in float32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import FunctionCtx, once_differentiable

from pareto_lightning.losses.logprobs import rows_log_probs, scaled_logits


def chunked_token_log_probs(
    hidden: Tensor,
    weight: Tensor,
    targets: Tensor,
    temperature: float = 1.0,
    chunk_size: int = 1024,
    bias: Tensor | None = None,
) -> Tensor:
    """``log_softmax((hidden @ weight.T + bias) / temperature)`` gathered at ``targets``, chunk by chunk.

    The same values and gradients as
    ``token_log_probs(F.linear(hidden, weight, bias), targets, temperature)``, but the ``[N, T, V]`` logits are
    never materialized, in the forward pass or the backward pass: ``chunk_size`` positions (of the ``N * T``, in
    row-major order) at a time, with each chunk's logits formed again in the backward pass.

    Args:
        hidden: ``[N, T, H]`` last hidden states, position ``t`` scoring ``targets[:, t]``.
        weight: ``[V, H]`` output layer weight (an ``nn.Linear``'s, possibly tied to the input embeddings).
        targets: ``[N, T]`` integer token ids in ``[0, V)``.
        temperature: softmax temperature, > 0 (``1.0`` = the raw logits).
        chunk_size: positions per chunk, >= 1: peak memory grows with ``chunk_size * V``, speed with larger chunks.
        bias: ``[V]`` output layer bias, or None.

    Returns:
        ``[N, T]`` float32 log-probabilities (``<= 0``).

    Raises:
        ValueError: wrong ranks or sizes, ``temperature <= 0`` or ``chunk_size < 1``.
        TypeError: ``targets`` is not an integer tensor, ``hidden`` is not floating point, or ``hidden`` and
            ``weight`` (and ``bias``) differ in dtype outside autocast.

    Example:
        >>> weight = torch.log(torch.tensor([[0.5], [0.25], [0.25]]))  # [V=3, H=1]: the logits are log-probs
        >>> hidden = torch.ones(1, 2, 1)  # [N=1, T=2, H=1]
        >>> chunked_token_log_probs(hidden, weight, torch.tensor([[0, 2]]), chunk_size=1).exp()
        tensor([[0.5000, 0.2500]])
    """
    _check(hidden, weight, targets, temperature, chunk_size, bias)
    n, t, h = hidden.shape
    out = _ChunkedLogProbs.apply(
        hidden.reshape(n * t, h), weight, bias, targets.reshape(n * t).long(), temperature, chunk_size,
        _compute_dtype(hidden, weight, bias),
    )  # fmt: skip
    return out.view(n, t)  # [N, T]


def _check(
    hidden: Tensor, weight: Tensor, targets: Tensor, temperature: float, chunk_size: int, bias: Tensor | None
) -> None:
    if not temperature > 0:
        raise ValueError(f"`temperature` must be > 0 (the policy's sampling temperature); got {temperature}.")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"`chunk_size` must be an integer >= 1 (positions per chunk); got {chunk_size!r}.")
    sizes_ok = hidden.ndim == 3 and weight.ndim == 2 and targets.shape == hidden.shape[:2]
    if not sizes_ok or weight.shape[1] != hidden.shape[2]:
        raise ValueError(
            "`hidden` must be [N, T, H], `weight` [V, H] and `targets` [N, T] with the same N, T and H; got hidden "
            f"{tuple(hidden.shape)}, weight {tuple(weight.shape)} and targets {tuple(targets.shape)}."
        )
    if bias is not None and bias.shape != weight.shape[:1]:
        raise ValueError(f"`bias` must be [V={weight.shape[0]}] or None; got {tuple(bias.shape)}.")
    if targets.dtype.is_floating_point or targets.dtype == torch.bool:
        raise TypeError(f"`targets` must hold integer token ids (torch.long); got dtype {targets.dtype}.")
    if not hidden.dtype.is_floating_point:
        raise TypeError(f"`hidden` must be a floating point tensor; got dtype {hidden.dtype}.")


def _compute_dtype(hidden: Tensor, weight: Tensor, bias: Tensor | None) -> torch.dtype:
    """The dtype ``F.linear(hidden, weight, bias)`` would compute in: autocast's, or the inputs' common one."""
    if torch.is_autocast_enabled(hidden.device.type):
        return torch.get_autocast_dtype(hidden.device.type)
    dtypes = {hidden.dtype, weight.dtype} | ({bias.dtype} if bias is not None else set())
    if len(dtypes) > 1:
        raise TypeError(
            "`hidden`, `weight` and `bias` must have one dtype outside autocast (as `F.linear` needs); got "
            f"{hidden.dtype}, {weight.dtype}" + (f" and {bias.dtype}." if bias is not None else ".")
        )
    return hidden.dtype


class _ChunkedLogProbs(torch.autograd.Function):
    """Forward: one ``[chunk, V]`` logits block at a time; backward: the same blocks formed again."""

    @staticmethod
    def forward(
        ctx: FunctionCtx,
        hidden: Tensor,  # [R, H], R = N * T
        weight: Tensor,  # [V, H]
        bias: Tensor | None,  # [V]
        targets: Tensor,  # [R] long
        temperature: float,
        chunk_size: int,
        dtype: torch.dtype,
    ) -> Tensor:
        h, w, b = _cast(hidden, weight, bias, dtype)
        logp = hidden.new_empty(hidden.shape[0], dtype=torch.float32)  # [R]
        normalizer = torch.empty_like(logp)  # [R] logsumexp(z / tau), kept for the backward pass
        with torch.autocast(hidden.device.type, enabled=False):  # `dtype` already is the autocast dtype
            for rows in _chunks(hidden.shape[0], chunk_size):
                logits = F.linear(h[rows], w, b)  # [c, V] in the compute dtype, like the output layer's
                logp[rows], normalizer[rows] = rows_log_probs(
                    logits, targets[rows], temperature, overwrite=True
                )
        ctx.save_for_backward(hidden, weight, bias, targets, normalizer)
        ctx.temperature, ctx.chunk_size, ctx.dtype = temperature, chunk_size, dtype
        return logp

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, grad_logp: Tensor) -> tuple[Tensor | None, ...]:
        hidden, weight, bias, targets, normalizer = ctx.saved_tensors
        need_h, need_w, need_b = ctx.needs_input_grad[:3]
        h, w, b = _cast(hidden, weight, bias, ctx.dtype)
        # d logp_r / d z_r = (onehot(y_r) - softmax(z_r / tau)) / tau; the upstream gradient scales each row.
        scale = grad_logp.float().unsqueeze(-1) / ctx.temperature  # [R, 1]
        zeros32 = {"dtype": torch.float32, "device": weight.device}
        grad_h = torch.empty_like(h) if need_h else None  # [R, H]
        grad_w = torch.zeros(weight.shape, **zeros32) if need_w else None  # [V, H]
        grad_b = torch.zeros(weight.shape[0], **zeros32) if need_b else None  # [V]
        with torch.autocast(hidden.device.type, enabled=False):
            for rows in _chunks(hidden.shape[0], ctx.chunk_size):
                z = scaled_logits(F.linear(h[rows], w, b), ctx.temperature, overwrite=True)  # [c, V] float32
                probs = z.sub_(normalizer[rows].unsqueeze(-1)).exp_()  # [c, V] softmax(z / tau), in place
                grad_z = probs.mul_(-scale[rows]).scatter_add_(1, targets[rows].unsqueeze(-1), scale[rows])
                # In the layer's dtype, as the full path casts the logits' gradient back through `.float()`.
                grad_z = grad_z.to(ctx.dtype)  # [c, V]
                if grad_h is not None:
                    grad_h[rows] = grad_z @ w  # [c, H]
                if grad_w is not None and ctx.dtype == torch.float32:
                    grad_w.addmm_(grad_z.T, h[rows])  # [V, H], summed over chunks in float32
                elif grad_w is not None:
                    grad_w += (grad_z.T @ h[rows]).float()
                if grad_b is not None:
                    grad_b += grad_z.float().sum(0)
        return (
            None if grad_h is None else grad_h.to(hidden.dtype),
            None if grad_w is None else grad_w.to(weight.dtype),
            None if grad_b is None else grad_b.to(bias.dtype),
            None, None, None, None,
        )  # fmt: skip


def _cast(
    hidden: Tensor, weight: Tensor, bias: Tensor | None, dtype: torch.dtype
) -> tuple[Tensor, Tensor, Tensor | None]:
    """The inputs in the compute dtype (no copy when they already have it)."""
    return hidden.to(dtype), weight.to(dtype), None if bias is None else bias.to(dtype)


def _chunks(rows: int, chunk_size: int) -> list[slice]:
    return [slice(start, start + chunk_size) for start in range(0, rows, chunk_size)]


__all__ = ["chunked_token_log_probs"]
