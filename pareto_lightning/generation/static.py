"""A static KV cache and a compiled decode step, with prompt lengths rounded up to buckets.

``transformers`` (5.x) does the work: ``generate(cache_implementation="static", compile_config=...)`` allocates
a fixed-size ``StaticCache`` for the call and runs every decode step through ``torch.compile(model.__call__)``
(the prefill stays eager). A compiled graph is reused as long as the shapes it saw stay the same: the batch and
the cache length (prompt columns + ``max_new_tokens``). This backend left-pads the prompts up to a multiple of
``prompt_bucket`` columns so that rollouts of slightly different prompt lengths share one graph.

Weights are never stale: since torch 2.5 ``torch.compile`` passes a module's parameters to the graph as inputs
(``inline_inbuilt_nn_modules``, always on in torch 2.13) instead of baking them in as constants, so an optimizer
step, a Reptile interpolation (``param.data.lerp_``) or FSDP2 gathering the weights into new storage is read by
the next decode step. Inductor's ``freezing`` option would bake them in; it is refused. The static cache itself is
created anew by every ``generate`` call, so no key/value of an earlier rollout survives.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from transformers import CompileConfig, LogitsProcessorList, PreTrainedTokenizerBase

from pareto_lightning.generation.base import (
    GENERATION_KEY,
    GenerationBackend,
    SamplingSettings,
    bucketed_length,
    left_pad,
)

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def _whole(value: object, least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


class StaticCacheGeneration(GenerationBackend):
    """``model.generate`` with a static KV cache and a ``torch.compile``-d decode step.

    On a GPU the compiled step (with ``compile_mode: reduce-overhead``, CUDA graphs) removes most of the
    Python and kernel-launch time that bounds a small model's decoding. The first rollout of each new shape
    compiles (tens of seconds; a minute or more for a large model), so this pays off over many rollouts of the
    same batch size. Greedy completions equal :class:`HFGeneration`'s token for token; sampling uses the same
    logits processors (the policy's ``FiniteLogitsGuard`` included) and the same sampler.

    On a CPU, where decoding is bound by arithmetic rather than launches, it does not pay: the padding of the
    prompts to a bucket and attention over the whole static cache are extra work. Measured on one core with a
    random SmolLM2-135M (16 completions of 16 tokens, 23-token prompts): 3.1 s per rollout with
    :class:`HFGeneration`, 5.0 s compiled with 64-token buckets, 3.5 s with 16-token buckets, 3.7 s without
    compiling; a whole GRPO step took about 1.15x the CPU time of the default's (``benchmarks/bench_grpo_step.py
    --backends default,static``).

    Args:
        prompt_bucket: left-pad prompts to a multiple of this many tokens (never past what the model holds:
            ``max_position_embeddings - max_new_tokens``), so the compiled graph is reused from rollout to
            rollout. 1 turns the bucketing off.
        compile: compile the decode step; false keeps the static cache with eager forwards (for tests, or to
            compare).
        compile_mode: ``torch.compile`` mode: ``reduce-overhead`` (CUDA graphs on a GPU; transformers'
            default), ``default``, ``max-autotune`` or ``max-autotune-no-cudagraphs``. Under FSDP2 the
            gathered weights can land at a new address every rollout (seen on CPU), which makes CUDA graphs
            re-record; prefer ``max-autotune-no-cudagraphs`` or ``default`` there (not measured yet).
        compile_backend: ``torch.compile`` backend (``inductor``; ``aot_eager`` or ``eager`` compile fast
            and are meant for tests).
        fullgraph: fail instead of falling back to eager code on a graph break.
        dynamic: ``torch.compile``'s ``dynamic`` (None: static shapes first, dynamic after a shape changes).

    Example:
        >>> import torch
        >>> from pareto_lightning.policy import PreferencePolicy
        >>> from pareto_lightning.tasks import LexiconLM, LexiconTokenizer
        >>> backend = StaticCacheGeneration(compile=False)
        >>> policy = PreferencePolicy(LexiconLM(), LexiconTokenizer(), max_new_tokens=4, generation=backend)
        >>> policy.generate(["write a note"], torch.tensor([[0.5, 0.5]]), 2, do_sample=False).completion_ids.shape
        torch.Size([2, 4])
    """

    def __init__(
        self,
        prompt_bucket: int = 64,
        compile: bool = True,
        compile_mode: str = "reduce-overhead",
        compile_backend: str = "inductor",
        fullgraph: bool = False,
        dynamic: bool | None = None,
    ) -> None:
        key = GENERATION_KEY + ".init_args"
        backends = torch._dynamo.list_backends(exclude_tags=())
        checks = [
            (_whole(prompt_bucket, 1), "prompt_bucket", f"must be an integer >= 1; got {prompt_bucket!r}"),
            (isinstance(compile, bool), "compile", f"must be true or false; got {compile!r}"),
            (compile_mode in COMPILE_MODES, "compile_mode",
             f"must be one of {list(COMPILE_MODES)}; got {compile_mode!r}"),
            (compile_backend in backends, "compile_backend", f"must be one of {backends}; got {compile_backend!r}"),
        ]  # fmt: skip
        problems = [f"`{key}.{name}` {message}." for ok, name, message in checks if not ok]
        if problems:
            raise ValueError("invalid StaticCacheGeneration configuration:\n  " + "\n  ".join(problems))
        self.prompt_bucket, self.compile = prompt_bucket, compile
        self.compile_config = CompileConfig(
            fullgraph=fullgraph, dynamic=dynamic, backend=compile_backend, mode=compile_mode
        )
        # transformers compiles only on accelerators unless asked; asking makes CPU runs (tests, CPU benchmarks)
        # take the same path as a GPU.
        self.compile_config._compile_all_devices = True

    def check(self, model: nn.Module, key: str = GENERATION_KEY) -> None:
        """Refuse a model whose class does not declare static-cache support, and inductor's ``freezing``.

        Example:
            >>> from pareto_lightning.tasks import LexiconLM
            >>> StaticCacheGeneration(compile=False).check(LexiconLM())  # a Qwen2: supported
        """
        if not getattr(model, "_can_compile_fullgraph", False):
            raise ValueError(
                f"`{key}`: {type(model).__name__} does not declare support for a static KV cache and compiled "
                "decoding (transformers' `_can_compile_fullgraph`); use `class_path: "
                "pareto_lightning.generation.HFGeneration` for this model."
            )
        if self.compile and torch._inductor.config.freezing:
            raise ValueError(
                f"`{key}.init_args.compile` is true while torch._inductor.config.freezing is on: the compiled decode "
                "step would bake in the weights of the first rollout and never see an optimizer step; turn freezing "
                "off or set compile: false."
            )

    def generate(
        self,
        model: nn.Module,
        tokenizer: PreTrainedTokenizerBase,
        prompt_ids: Tensor,
        prompt_mask: Tensor,
        *,
        max_new_tokens: int,
        sampling: SamplingSettings,
        logits_processor: LogitsProcessorList,
        sharded: bool = False,
        synced_gpus: bool = False,
    ) -> Tensor:
        positions = getattr(getattr(model, "config", None), "max_position_embeddings", None)
        limit = (
            positions - max_new_tokens if isinstance(positions, int) and positions > max_new_tokens else None
        )
        length = bucketed_length(prompt_ids.shape[1], self.prompt_bucket, limit)
        ids, mask = left_pad(prompt_ids, prompt_mask, length, tokenizer.pad_token_id)  # [N, length] each
        compiling = {"compile_config": self.compile_config} if self.compile else {"disable_compile": True}
        out = model.generate(
            input_ids=ids,
            attention_mask=mask,
            max_new_tokens=max_new_tokens,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            synced_gpus=synced_gpus,
            logits_processor=logits_processor,
            cache_implementation="static",
            **compiling,
            **sampling.generate_kwargs(),
        )
        return out[:, length:]  # [N, T] the new tokens


__all__ = ["COMPILE_MODES", "StaticCacheGeneration"]
