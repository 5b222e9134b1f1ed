"""Non-finite numbers stop where they appear: in the gradients before an optimizer step, in the logits before a
token is sampled.

A NaN gradient that reaches AdamW turns every weight it touches into NaN, and the logged loss can stay finite
(the forward pass was fine). On CUDA the next ``generate`` then fails with a device-side assert that kills the
process's CUDA context, so nothing, not even a crash checkpoint, can be saved. The checks here find the state
earlier, on every device, at the cost of one host synchronization per optimizer step and one per rollout.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor
from transformers import LogitsProcessor

LIKELY_CAUSES = (
    "likely causes: (1) an attention kernel's backward pass on padded batches (the cuDNN SDPA backend on "
    "Hopper GPUs returns NaN query gradients for some padded lengths; the policy turns it off on CUDA unless "
    "`model.init_args.policy.init_args.cudnn_attention` is true); (2) float16 overflow (prefer "
    "`trainer.precision: bf16-mixed`); (3) a learning rate too high for the model "
    "(`model.init_args.learning_rate`); (4) NaN/inf in the inputs or rewards"
)


def use_safe_attention_kernels(device: torch.device, allow_cudnn: bool = False) -> bool:
    """Turn off the cuDNN SDPA kernel for this process when training on CUDA; True when it was turned off.

    On Hopper GPUs since torch 2.11 PyTorch picks cuDNN for ``scaled_dot_product_attention`` by default, and its
    backward pass returns NaN query gradients when an explicit mask is given for some padded lengths (pytorch
    issue 196678, TRL issue 7181): a finite loss, NaN weights a few steps later. The flash, memory-efficient and
    math kernels compute the same attention. The switch is process-wide on purpose: a recomputed forward under
    activation checkpointing, which runs outside any context manager, must use a safe kernel too.

    Example:
        >>> use_safe_attention_kernels(torch.device("cpu"))  # nothing to do off CUDA
        False
    """
    if device.type != "cuda" or allow_cudnn:
        return False
    torch.backends.cuda.enable_cudnn_sdp(False)
    return True


class NonFiniteError(FloatingPointError):
    """A NaN or infinity where the training state must be finite (gradients, logits)."""


def _local(tensor: Tensor) -> Tensor:
    """The part of ``tensor`` this process holds (the local shard of an FSDP2 ``DTensor``)."""
    from torch.distributed.tensor import DTensor

    return tensor.to_local() if isinstance(tensor, DTensor) else tensor


def nonfinite_gradients(named_parameters: Iterable[tuple[str, Tensor]]) -> list[str]:
    """Names of the parameters whose (local) gradient holds a NaN or an infinity, in order.

    One host synchronization for all parameters; parameters without a gradient are skipped. Under FSDP2 only
    this process's shards are read: combine the ranks' answers with an all-reduce (see the algorithm modules).

    Example:
        >>> a, b = torch.zeros(2, requires_grad=True), torch.zeros(2, requires_grad=True)
        >>> a.grad, b.grad = torch.tensor([1.0, float("nan")]), torch.ones(2)
        >>> nonfinite_gradients([("a", a), ("b", b)])
        ['a']
    """
    named = [(name, _local(p.grad)) for name, p in named_parameters if p.grad is not None]
    if not named:
        return []
    finite = torch.stack([g.isfinite().all() for _, g in named]).cpu()  # [P] one transfer
    return [name for (name, _), ok in zip(named, finite.tolist(), strict=True) if not ok]


def nonfinite_rows(scores: Tensor) -> Tensor:
    """``[N]`` True where a row of next-token scores cannot be sampled from: a NaN, a ``+inf``, or no finite entry.

    ``-inf`` alone is normal (top-p and top-k filters write it), as long as some entry of the row is finite.

    Example:
        >>> inf = float("inf")
        >>> nonfinite_rows(torch.tensor([[0.0, -inf], [float("nan"), 1.0], [inf, 0.0], [-inf, -inf]])).tolist()
        [False, True, True, True]
    """
    return scores.isnan().any(-1) | scores.isposinf().any(-1) | ~scores.isfinite().any(-1)


class FiniteLogitsGuard(LogitsProcessor):
    """A logits processor that records rows that cannot be sampled from and makes them samplable.

    Sampling from a NaN distribution is a device-side assert on CUDA (the process's CUDA context is lost). This
    processor flags such rows on the device, without a synchronization per token, and replaces them with
    uniform scores so that sampling runs to the end; :meth:`raise_if_found` then reports them once per
    rollout, as a :class:`NonFiniteError` that the training loop (and its crash checkpoint) can handle.

    Example:
        >>> guard = FiniteLogitsGuard()
        >>> guard(torch.zeros(2, 1, dtype=torch.long), torch.tensor([[0.0, 1.0], [float("nan"), 0.0]]))
        tensor([[0., 1.],
                [0., 0.]])
        >>> guard.raise_if_found("while sampling")
        Traceback (most recent call last):
        ...
        pareto_lightning.finite.NonFiniteError: non-finite logits (NaN/inf) in 1 of 2 rows while sampling; ...
    """

    def __init__(self) -> None:
        self.found: Tensor | None = None  # [N] bool, on the scores' device

    def __call__(self, input_ids: Tensor, scores: Tensor) -> Tensor:
        bad = nonfinite_rows(scores)  # [N]
        self.found = bad if self.found is None else self.found | bad
        return scores.masked_fill(bad.unsqueeze(-1), 0.0)  # [N, V]

    def raise_if_found(self, where: str) -> None:
        if self.found is None:
            return
        count = int(self.found.sum())  # the one synchronization of the rollout
        if count:
            raise NonFiniteError(
                f"non-finite logits (NaN/inf) in {count} of {len(self.found)} rows {where}; the policy's weights "
                f"or inputs hold NaN/inf. {LIKELY_CAUSES}."
            )


__all__ = [
    "LIKELY_CAUSES",
    "FiniteLogitsGuard",
    "NonFiniteError",
    "nonfinite_gradients",
    "nonfinite_rows",
    "use_safe_attention_kernels",
]
