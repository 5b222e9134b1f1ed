"""The generation backends our side can run with (``--backends``): each is one more column of every cell.

* ``default``: :class:`~pareto_lightning.generation.HFGeneration`, ``model.generate`` as it comes (dynamic KV
  cache, eager forwards), the policy's default;
* ``static``: :class:`~pareto_lightning.generation.StaticCacheGeneration` with its defaults: a static KV cache,
  the decode step compiled by inductor (mode ``reduce-overhead``, which on a CPU is inductor without CUDA
  graphs), prompts left-padded to a multiple of 64 tokens. The first step of a run compiles (dropped with the
  warm-up; the first-step table prints it);
* ``static_eager``: the same static cache and padding without compilation (what the cache alone costs);
* ``full_logits``: the default backend, with the log-probs from the full ``[N, T, V]`` logits
  (``logprob_chunk_size: null``) instead of 512-position chunks of the output layer (the policy's default);
* ``continuous``: :class:`~pareto_lightning.generation.ContinuousBatchingGeneration` with 64-token pages. It
  refuses the forced cells (their ``min_new_tokens`` is processing it would drop), which the table notes.
"""

from __future__ import annotations

from collections.abc import Callable

from pareto_lightning.generation import (
    ContinuousBatchingGeneration,
    GenerationBackend,
    HFGeneration,
    StaticCacheGeneration,
)

BACKENDS: dict[str, Callable[[], GenerationBackend]] = {
    "default": HFGeneration,
    "static": StaticCacheGeneration,
    "static_eager": lambda: StaticCacheGeneration(compile=False),
    "continuous": lambda: ContinuousBatchingGeneration(page_size=64),
    "full_logits": HFGeneration,
}
"""Backend key -> a function building it."""


def side_key(backend: str) -> str:
    """The side (column) of our module run with ``backend``: ``ours`` for the default.

    Example:
        >>> side_key("default"), side_key("static")
        ('ours', 'ours_static')
    """
    return "ours" if backend == "default" else f"ours_{backend}"


def parse_backends(values: list[str]) -> list[str]:
    """``--backends`` values, comma- or space-separated, ``default`` first, each once.

    Raises:
        SystemExit: an unknown backend.

    Example:
        >>> parse_backends(["static,default", "continuous"])
        ['default', 'static', 'continuous']
    """
    names = [v for value in values for v in value.split(",") if v]
    unknown = sorted(set(names) - set(BACKENDS))
    if unknown:
        raise SystemExit(f"`--backends` takes {sorted(BACKENDS)}; got {unknown}.")
    ordered = ["default"] + [n for n in names if n != "default"]
    return list(dict.fromkeys(ordered))
