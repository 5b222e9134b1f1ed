"""FSDP2 helpers: shard a Hugging Face causal LM per decoder layer, unshard it once per rollout, and end the
process group when a run is over.

Lightning's ``ModelParallelStrategy`` calls ``LightningModule.configure_model`` with a device mesh; the algorithm
modules then call :func:`shard_causal_lm` (with :func:`mixed_precision_policy` for ``precision="bf16-mixed"``).
Generation of a sharded model all-gathers each layer's weights on every forward, i.e. once per generated token;
:func:`unsharded` gathers them once for the whole rollout instead, at the cost of holding the full weights (not the
optimizer state) on every rank while generating.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from torch import nn

if TYPE_CHECKING:
    from torch.distributed.fsdp import MixedPrecisionPolicy


def decoder_layers(model: nn.Module) -> list[nn.Module]:
    """The repeated blocks of a transformers model (the classes named in ``_no_split_modules``).

    Example:
        >>> from transformers import Qwen2Config, Qwen2ForCausalLM
        >>> m = Qwen2ForCausalLM(Qwen2Config(vocab_size=32, hidden_size=16, num_hidden_layers=2,
        ...                      num_attention_heads=2, num_key_value_heads=1, intermediate_size=32))
        >>> len(decoder_layers(m))
        2
    """
    names = set(getattr(model, "_no_split_modules", None) or [])
    base = getattr(model, "get_base_model", lambda: model)()
    names |= set(getattr(base, "_no_split_modules", None) or [])
    return [m for m in model.modules() if type(m).__name__ in names]


def shard_causal_lm(
    model: nn.Module,
    mesh: Any,
    mixed_precision: MixedPrecisionPolicy | None = None,
    reshard_after_forward: bool = True,
) -> None:
    """``fully_shard`` each decoder layer, then the root (the usual FSDP2 wrapping of a transformer).

    Needs an initialized process group; ``configure_model`` calls it with the strategy's data-parallel mesh
    (tested with two gloo processes in ``tests/integration``).

    Args:
        model: a transformers model (its ``_no_split_modules`` name the decoder layers).
        mesh: the 1-D ``DeviceMesh`` to shard over.
        mixed_precision: an FSDP2 ``MixedPrecisionPolicy`` (see :func:`mixed_precision_policy`), or None.
        reshard_after_forward: free the gathered weights after each forward (:func:`unsharded` assumes True).
    """
    from torch.distributed.fsdp import fully_shard

    kwargs = {"mesh": mesh, "reshard_after_forward": reshard_after_forward}
    if mixed_precision is not None:
        kwargs["mp_policy"] = mixed_precision
    for layer in decoder_layers(model):
        fully_shard(layer, **kwargs)
    fully_shard(model, **kwargs)


def mixed_precision_policy(precision: str | None) -> MixedPrecisionPolicy | None:
    """FSDP2's mixed precision for Lightning's ``precision`` flag: bf16 compute, float32 master weights.

    For ``"bf16-mixed"`` the sharded float32 parameters are all-gathered as bfloat16 (half the traffic) and
    gradients reduced in float32; the optimizer keeps updating the float32 shards. Autocast alone would keep a
    bfloat16 copy of every gathered weight alive from forward to backward (2 bytes per parameter on each rank,
    outside FSDP's control) and would gather float32 weights for generation; with bfloat16 parameters it casts
    nothing. Other flags (``"32-true"``, ``"bf16-true"``, where the weights already have the compute dtype)
    need no policy: None.

    Example:
        >>> mixed_precision_policy("bf16-mixed").param_dtype, mixed_precision_policy("32-true")
        (torch.bfloat16, None)
    """
    if precision not in ("bf16-mixed", "16-mixed"):
        return None
    import torch
    from torch.distributed.fsdp import MixedPrecisionPolicy

    dtype = torch.bfloat16 if precision == "bf16-mixed" else torch.float16
    return MixedPrecisionPolicy(param_dtype=dtype, reduce_dtype=torch.float32)


def is_fsdp(model: nn.Module) -> bool:
    """Whether ``fully_shard`` was applied to ``model`` itself.

    Example:
        >>> is_fsdp(nn.Linear(2, 2))
        False
    """
    from torch.distributed.fsdp import FSDPModule

    return isinstance(model, FSDPModule)


@contextmanager
def unsharded(model: nn.Module) -> Iterator[None]:
    """Gather the full weights of every FSDP2 unit once, keep them through many forwards, reshard at exit.

    Inside, forwards need no communication, so ranks may run different numbers of them (generation stopping
    at different lengths). A model without FSDP2 units is left as it is.

    Example:
        >>> layer = nn.Linear(2, 2)
        >>> with unsharded(layer):
        ...     layer.weight.shape
        torch.Size([2, 2])
    """
    from torch.distributed.fsdp import FSDPModule

    units = [m for m in model.modules() if isinstance(m, FSDPModule)]
    if not units:
        yield
        return
    for unit in units:
        unit.set_reshard_after_forward(False)
        unit.unshard()
    try:
        yield
    finally:
        for unit in units:
            unit.reshard()
            unit.set_reshard_after_forward(True)


def end_process_group() -> None:
    """Destroy the default process group, if this process has one; call it once the last collective is done.

    Lightning leaves the group alive after ``fit``. A gloo process that exits with its group alive can abort at
    interpreter exit ("terminate called without an active exception", a non-zero exit code) while its worker
    threads are torn down; the PyTorch documentation asks every process to call ``destroy_process_group`` near
    the end of its program. In a single process it does nothing.

    >>> from pareto_lightning import end_process_group
    >>> end_process_group()  # no process group here: a no-op
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()

__all__ = [
    "decoder_layers",
    "end_process_group",
    "is_fsdp",
    "mixed_precision_policy",
    "shard_causal_lm",
    "unsharded",
]
