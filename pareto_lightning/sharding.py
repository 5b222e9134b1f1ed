"""FSDP2 helpers: shard a Hugging Face causal LM per decoder layer, and unshard it once per rollout.

Lightning's ``ModelParallelStrategy`` calls ``LightningModule.configure_model`` with a device mesh; the algorithm
modules then call :func:`shard_causal_lm`. Generation of a sharded model all-gathers each layer's weights on every
forward, i.e. once per generated token; :func:`unsharded` gathers them once for the whole rollout instead, at the
cost of holding the full weights (not the optimizer state) on every rank while generating.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn


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


def shard_causal_lm(model: nn.Module, mesh, mixed_precision=None, reshard_after_forward: bool = True) -> None:
    """``fully_shard`` each decoder layer, then the root (the usual FSDP2 wrapping of a transformer)."""
    from torch.distributed.fsdp import fully_shard

    kwargs = {"mesh": mesh, "reshard_after_forward": reshard_after_forward}
    if mixed_precision is not None:
        kwargs["mp_policy"] = mixed_precision
    for layer in decoder_layers(model):
        fully_shard(layer, **kwargs)
    fully_shard(model, **kwargs)


def is_fsdp(model: nn.Module) -> bool:
    from torch.distributed.fsdp import FSDPModule

    return isinstance(model, FSDPModule)


@contextmanager
def unsharded(model: nn.Module) -> Iterator[None]:
    """Gather the full weights of every FSDP2 unit once, keep them through many forwards, reshard at exit."""
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
