"""Continuous batching: ``transformers``' ``model.generate_batch`` with a paged KV cache.

Every completion is a request on its own: unpadded prompts, a paged cache whose blocks the ``G`` copies of one
prompt can share (prefix sharing), and finished rows leave the batch instead of decoding padding until the
longest row is done. ``generate_batch`` runs the requests on a background thread and returns the new tokens.

What it cannot do, and what this backend does about it:

- **Logits processors.** ``generate_batch`` builds its own processors from the generation config (temperature,
  top-k, top-p) and takes no others, so the policy's ``FiniteLogitsGuard`` cannot run. The backend checks instead,
  once per rollout, that every weight is finite (the way NaN logits have reached sampling so far: NaN weights) and
  raises the same ``NonFiniteError``; NaN logits from finite weights (a float16 overflow) are not caught.
  Processing that the model's own ``generation_config`` asks for (``repetition_penalty``, ``min_new_tokens``, ...)
  would be dropped silently by ``transformers``: the policy drops it from the config when it is built (with a
  warning, for every backend), and what is set on the config later is refused here.
- **FSDP2.** The forwards run on another thread, outside the unsharded-weights context of the policy's thread;
  a sharded policy is refused at its first rollout (``ModelParallelStrategy``: use :class:`StaticCacheGeneration`
  or :class:`HFGeneration`). Single-device training works (tested on CPU); ``ddp`` has not been tried.
- **Random numbers.** ``generate_batch`` reseeds torch's global generator with a number it draws from it (one
  call to ``torch.manual_seed`` per rollout), so a run stays reproducible from its seed but samples other
  tokens than the other backends do from the same seed.
- **CPU.** It runs, with the same completions, but each call starts and joins a thread and polls a queue: on the
  built-in task's tiny model a training step took 0.6-1.1 s against 0.05 s with :class:`HFGeneration` (2 shared
  cores). It is meant for GPUs, where it has not been measured here yet.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import Tensor, nn
from transformers import GenerationConfig, LogitsProcessorList, PreTrainedTokenizerBase
from transformers.generation.configuration_utils import ContinuousBatchingConfig

from pareto_lightning.finite import LIKELY_CAUSES, FiniteLogitsGuard, NonFiniteError
from pareto_lightning.generation.base import (
    GENERATION_KEY,
    GenerationBackend,
    SamplingSettings,
    right_pad_rows,
)
from pareto_lightning.generation.model_config import generation_config_for, unsupported_processing


def _optional_whole(value: object, least: int) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= least)


def check_finite_weights(model: nn.Module, where: str) -> None:
    """Raise :class:`~pareto_lightning.finite.NonFiniteError` when a weight of ``model`` is NaN or infinite.

    One host synchronization for all parameters.

    Example:
        >>> layer = nn.Linear(2, 2)
        >>> check_finite_weights(layer, "before generating")
        >>> with torch.no_grad():
        ...     layer.weight[0, 0] = float("nan")
        >>> check_finite_weights(layer, "before generating")
        Traceback (most recent call last):
        ...
        pareto_lightning.finite.NonFiniteError: non-finite weights (NaN/inf) in 1 of 2 tensors before generating; ...
    """
    params = list(model.parameters())
    finite = torch.stack([p.isfinite().all() for p in params]).cpu()  # [P] one transfer
    bad = int((~finite).sum())
    if bad:
        raise NonFiniteError(
            f"non-finite weights (NaN/inf) in {bad} of {len(params)} tensors {where}; sampling from them would "
            f"fail. {LIKELY_CAUSES}."
        )


class ContinuousBatchingGeneration(GenerationBackend):
    """``model.generate_batch``: continuous batching over a paged KV cache, one request per completion.

    Greedy completions equal :class:`HFGeneration`'s token for token and samples come from the same
    distribution (temperature and top-p only). See the module docstring for what it refuses (FSDP2, logits
    processing from the model's ``generation_config``) and how it replaces the ``FiniteLogitsGuard``.

    Args:
        page_size: tokens per page of the paged cache (at least 4).
        num_blocks: blocks in the cache. None: just enough for the rollout (every completion at full length),
            allocated per rollout and freed after; transformers' own default (a share of free GPU memory) is not
            used, since training needs that memory back between rollouts.
        max_batch_tokens: most tokens in one forward. None: all the rollout's prompt tokens (one prefill).
        compile_level: transformers' ``default_compile_level`` for the continuous-batching forwards (0: no
            compilation; 1 to 3: more tuning, longer warm-up).
        allow_block_sharing: share cache blocks between requests with the same prompt prefix.

    Example:
        >>> import torch
        >>> from pareto_lightning.policy import PreferencePolicy
        >>> from pareto_lightning.tasks import LexiconLM, LexiconTokenizer
        >>> backend = ContinuousBatchingGeneration(page_size=16)
        >>> policy = PreferencePolicy(LexiconLM(), LexiconTokenizer(), max_new_tokens=4, generation=backend)
        >>> policy.generate(["write a note"], torch.tensor([[0.5, 0.5]]), 2).completion_ids.shape[0]
        2
    """

    def __init__(
        self,
        page_size: int = 256,
        num_blocks: int | None = None,
        max_batch_tokens: int | None = None,
        compile_level: int = 0,
        allow_block_sharing: bool = True,
    ) -> None:
        key = GENERATION_KEY + ".init_args"
        checks = [
            (_optional_whole(page_size, 4) and page_size is not None, "page_size",
             f"must be an integer >= 4; got {page_size!r}"),
            (_optional_whole(num_blocks, 1), "num_blocks", f"must be an integer >= 1 or null; got {num_blocks!r}"),
            (_optional_whole(max_batch_tokens, 1), "max_batch_tokens",
             f"must be an integer >= 1 or null; got {max_batch_tokens!r}"),
            (compile_level in (0, 1, 2, 3) and not isinstance(compile_level, bool), "compile_level",
             f"must be 0, 1, 2 or 3; got {compile_level!r}"),
        ]  # fmt: skip
        problems = [f"`{key}.{name}` {message}." for ok, name, message in checks if not ok]
        if problems:
            raise ValueError(
                "invalid ContinuousBatchingGeneration configuration:\n  " + "\n  ".join(problems)
            )
        self.page_size, self.num_blocks, self.max_batch_tokens = page_size, num_blocks, max_batch_tokens
        self.compile_level, self.allow_block_sharing = compile_level, allow_block_sharing

    def check(self, model: nn.Module, key: str = GENERATION_KEY) -> None:
        """Refuse a model without ``generate_batch`` or one whose ``generation_config`` asks for processing that
        continuous batching would drop.

        Example:
            >>> from pareto_lightning.tasks import LexiconLM
            >>> model = LexiconLM()
            >>> ContinuousBatchingGeneration().check(model)
            >>> model.generation_config.repetition_penalty = 1.3
            >>> ContinuousBatchingGeneration().check(model)
            Traceback (most recent call last):
            ...
            ValueError: `model.init_args.policy.init_args.generation`: the model's generation_config asks for ...
        """
        if not callable(getattr(model, "generate_batch", None)):
            raise ValueError(
                f"`{key}`: {type(model).__name__} has no `generate_batch` (continuous batching needs a "
                "transformers model and a transformers version that has it); use `class_path: "
                "pareto_lightning.generation.HFGeneration`."
            )
        config = copy.deepcopy(model.generation_config)
        config.update(do_sample=True, temperature=0.5, top_p=0.5, top_k=0)
        self._refuse_processing(model, config, key)

    @staticmethod
    def _refuse_processing(model: nn.Module, config: GenerationConfig, key: str) -> None:
        extra = unsupported_processing(model, config)
        if extra:
            raise ValueError(
                f"`{key}`: the model's generation_config asks for {extra}, which continuous batching would drop "
                "(it applies temperature, top-k and top-p only), so its samples would come from another "
                "distribution than the other backends'; clear those settings in the model's generation_config "
                "(generation_config.json) or use `class_path: pareto_lightning.generation.HFGeneration`."
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
        if sharded:
            raise ValueError(
                f"`{GENERATION_KEY}`: ContinuousBatchingGeneration cannot generate with an FSDP2-sharded model (its "
                "forwards run on a background thread, outside the gathered-weights context); use `class_path: "
                "pareto_lightning.generation.StaticCacheGeneration` or `pareto_lightning.generation.HFGeneration` "
                "with ModelParallelStrategy."
            )
        others = [type(p).__name__ for p in logits_processor if not isinstance(p, FiniteLogitsGuard)]
        if others:
            raise ValueError(f"ContinuousBatchingGeneration cannot run logits processors; got {others}.")
        config = generation_config_for(model, max_new_tokens, sampling, tokenizer)
        self._refuse_processing(model, config, GENERATION_KEY)
        check_finite_weights(model, "before generating (continuous batching)")
        rows = [
            ids[keep.bool()].tolist() for ids, keep in zip(prompt_ids, prompt_mask, strict=True)
        ]  # N lists
        longest = max(len(r) for r in rows)
        blocks = self.num_blocks or len(rows) * (math.ceil((longest + max_new_tokens) / self.page_size) + 1)
        batch = ContinuousBatchingConfig(
            page_size=self.page_size,
            num_blocks=blocks,
            max_batch_tokens=self.max_batch_tokens or max(sum(len(r) for r in rows), len(rows)),
            default_compile_level=self.compile_level,
            allow_block_sharing=self.allow_block_sharing,
        )
        results = model.generate_batch(
            rows, generation_config=config, continuous_batching_config=batch, max_new_tokens=max_new_tokens,
            warmup=False, progress_bar=False,
        )  # fmt: skip
        outputs = list(results.values())
        failed = [o.error for o in outputs if o.error is not None]
        if len(outputs) != len(rows) or failed:
            raise RuntimeError(
                f"continuous batching returned {len(outputs) - len(failed)} of {len(rows)} completions"
                + (f"; first error: {failed[0]}" if failed else "")
            )
        return right_pad_rows([list(o.generated_tokens) for o in outputs], tokenizer.pad_token_id,
                              prompt_ids.device)  # fmt: skip


__all__ = [
    "ContinuousBatchingGeneration",
    "check_finite_weights",
    "generation_config_for",
    "unsupported_processing",
]
