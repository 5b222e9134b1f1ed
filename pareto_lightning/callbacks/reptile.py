"""The tensor maths of the ``MetaLoop``: snapshots, Reptile deltas and the outer optimizer step.

Every function works elementwise on dicts of tensors by parameter name, so under FSDP2 it runs on each rank's
local shards (DTensor) without gathering; only :func:`gathered` (for checkpoints) and the one scalar of
:func:`global_norm` communicate.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

try:  # DTensor parameters come from FSDP2 (``fully_shard``) and tensor parallelism
    from torch.distributed.tensor import DTensor, distribute_tensor
except ImportError:  # torch built without distributed support, or older than 2.5
    DTensor = distribute_tensor = None


def is_dtensor(t: Tensor) -> bool:
    return DTensor is not None and isinstance(t, DTensor)


def snapshot(params: dict[str, Tensor]) -> dict[str, Tensor]:
    """theta_0: detached copies in the parameters' own dtype and device (a DTensor copies its local shard)."""
    return {name: p.detach().clone() for name, p in params.items()}


def add_delta(
    params: dict[str, Tensor], anchor: dict[str, Tensor], delta_sum: dict[str, Tensor] | None
) -> dict[str, Tensor]:
    """``delta_sum + (theta_j - theta_0)``, accumulated in at least float32.

    bf16 differences of nearby weights would round small adaptation steps away. New tensors are returned
    rather than added in place, so a ``state_dict`` handed to an asynchronous checkpoint writer never changes
    under it.
    """
    out = {}
    for name, p in params.items():
        acc = torch.promote_types(p.dtype, torch.float32)
        delta = p.detach().to(acc) - anchor[name].to(acc)  # elementwise: DTensor shards stay local
        out[name] = delta if delta_sum is None else delta_sum[name] + delta
    return out


@torch.no_grad()
def copy_into(params: dict[str, Tensor], values: dict[str, Tensor]) -> None:
    # In place, so the optimizer keeps holding the same parameter objects.
    for name, p in params.items():
        p.copy_(values[name])


def gathered(state: dict[str, Tensor] | None) -> dict[str, Tensor] | None:
    """Whole tensors for a checkpoint: Lightning saves callback state from rank 0 only, even under FSDP2.

    Every rank joins each gather (a collective, one tensor at a time); only rank 0 keeps the whole tensors on
    the CPU, the other ranks' copies (which Lightning discards) are left empty.
    """
    if state is None:
        return None
    dist = torch.distributed
    keep = not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0
    out = {}
    for name, t in state.items():
        if is_dtensor(t):
            full = t.full_tensor()  # collective
            t = full.cpu() if keep else full.new_empty(0, device="cpu")
        out[name] = t
    return out


def placed_like(state: dict[str, Tensor], params: dict[str, Tensor]) -> dict[str, Tensor]:
    """A loaded state on its parameters' devices; whole tensors are sharded again like their DTensor."""
    out = {}
    for name, t in state.items():
        p = params[name]
        if is_dtensor(p) and not is_dtensor(t):
            t = distribute_tensor(t.to(p.device), p.device_mesh, p.placements)
        out[name] = t.to(p.device)
    return out


def placed_states(
    states: tuple[dict[str, Tensor] | None, ...], params: dict[str, Tensor]
) -> tuple[dict[str, Tensor] | None, ...]:
    """States loaded from a checkpoint, checked against the model's parameters and placed like them."""
    names = set().union(*(s for s in states if s is not None))
    missing = sorted(names - set(params))
    if missing:
        raise ValueError(
            f"the MetaLoop state in the checkpoint names parameters the model lacks ({missing[:3]}); "
            "resume with the same model, or start a new run instead of resuming."
        )
    return tuple(None if s is None else placed_like(s, params) for s in states)


def global_norm(tensors: Iterable[Tensor]) -> float:
    """L2 norm over all tensors; DTensors add up local sums of squares, reduced once across ranks."""
    plain, sharded = [], None
    for t in tensors:
        sq = t.pow(2).sum(dtype=torch.float64)  # [] (for a DTensor: a pending partial sum over the shards)
        if is_dtensor(sq):
            sharded = sq if sharded is None else sharded + sq
        else:
            plain.append(sq)
    total = float(torch.stack(plain).sum()) if plain else 0.0
    if sharded is not None:
        total += float(sharded.full_tensor())  # one scalar all-reduce; no parameter is gathered
    return total**0.5


def outer_step(
    anchor: dict[str, Tensor],
    delta_sum: dict[str, Tensor],
    num_tasks: int,
    lr: float,
    momentum: float = 0.0,
    nesterov: bool = False,
    buffer: dict[str, Tensor] | None = None,
) -> tuple[dict[str, Tensor], dict[str, Tensor] | None]:
    r"""The meta step: SGD (optionally with momentum) on the Reptile pseudo-gradient.

    With the pseudo-gradient :math:`g = \theta_0 - \frac{1}{B}\sum_j \theta_j = -\text{delta\_sum} / B`:
    :math:`b \leftarrow m b + g`, then :math:`s = g + m b` (Nesterov) or :math:`s = b`, and
    :math:`\theta = \theta_0 - \epsilon s`. With ``momentum = 0`` this is Reptile's interpolation
    :math:`\theta_0 + \epsilon \frac{1}{B}\sum_j(\theta_j - \theta_0)` and no buffer is kept. Outer
    Nesterov momentum on this pseudo-gradient is DiLoCo's outer optimizer (Douillard et al. 2023, lr 0.7,
    momentum 0.9); the first step starts from a zero buffer, as ``torch.optim.SGD`` does.

    Args:
        anchor: :math:`\theta_0` by parameter name.
        delta_sum: :math:`\sum_j (\theta_j - \theta_0)` (at least float32).
        num_tasks: ``B``.
        lr: :math:`\epsilon`.
        momentum: ``m`` in ``[0, 1)``.
        nesterov: use the Nesterov form of the step.
        buffer: the momentum buffer of the previous meta step (None before the first).

    Returns:
        The new parameters (in the anchor's dtype) and the new buffer (None when ``momentum == 0``).

    Example:
        >>> anchor, delta = {"x": torch.tensor([1.0])}, {"x": torch.tensor([-2.0])}  # B = 2: g = 1
        >>> outer_step(anchor, delta, 2, lr=0.5)[0]  # 1 - 0.5 * 1
        {'x': tensor([0.5000])}
        >>> theta, buf = outer_step(anchor, delta, 2, lr=0.5, momentum=0.9, nesterov=True)  # s = 1 + 0.9
        >>> theta, buf
        ({'x': tensor([0.0500])}, {'x': tensor([1.])})
    """
    new_params, new_buffer = {}, ({} if momentum else None)
    for name, d in delta_sum.items():
        g = d / (-num_tasks)  # pseudo-gradient
        if momentum:
            b = g if buffer is None else momentum * buffer[name] + g
            new_buffer[name] = b
            g = g + momentum * b if nesterov else b
        new_params[name] = (anchor[name].to(g.dtype) - lr * g).to(anchor[name].dtype)
    return new_params, new_buffer

__all__ = [
    "add_delta",
    "copy_into",
    "gathered",
    "global_norm",
    "is_dtensor",
    "outer_step",
    "placed_like",
    "placed_states",
    "snapshot",
]
