"""Pluggable generation backends of :class:`~pareto_lightning.policy.PreferencePolicy`.

Set one in YAML (the default is :class:`HFGeneration`)::

    model:
      init_args:
        policy:
          init_args:
            generation:
              class_path: pareto_lightning.generation.StaticCacheGeneration
              init_args: {prompt_bucket: 64}

* :class:`HFGeneration` - ``model.generate`` as it comes (dynamic cache, eager); runs everywhere.
* :class:`StaticCacheGeneration` - static KV cache, compiled decode step, bucketed prompt lengths.
* :class:`ContinuousBatchingGeneration` - ``model.generate_batch`` (paged cache, no FSDP2).

Every backend returns the new token ids; the policy builds the same ``Rollout`` from them. ``docs/vllm.md``
describes how a vLLM backend would plug in.
"""

from pareto_lightning.generation.base import GENERATION_KEY, GenerationBackend, SamplingSettings
from pareto_lightning.generation.continuous import ContinuousBatchingGeneration
from pareto_lightning.generation.hf import HFGeneration
from pareto_lightning.generation.static import StaticCacheGeneration

__all__ = [
    "GENERATION_KEY",
    "ContinuousBatchingGeneration",
    "GenerationBackend",
    "HFGeneration",
    "SamplingSettings",
    "StaticCacheGeneration",
]
