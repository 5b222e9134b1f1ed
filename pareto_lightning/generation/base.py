"""The contract between the policy and a generation backend, and the pure token maths backends share.

:class:`~pareto_lightning.policy.PreferencePolicy` tokenizes and left-pads the conditioned prompts, gathers the
weights of a sharded model once (``sharding.unsharded``), and calls its backend's
:meth:`GenerationBackend.generate` inside; the backend returns the new token ids only, and the policy builds the
:class:`~pareto_lightning.rollout.Rollout` from them. So every backend returns the same ``Rollout``, gathers the
weights once per rollout, and reads the weights as they are at the call (never a copy from an earlier step).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from transformers import LogitsProcessorList, PreTrainedTokenizerBase

GENERATION_KEY = "model.init_args.policy.init_args.generation"
"""The config key of the policy's backend, quoted by every error a backend raises."""


@dataclass(frozen=True)
class SamplingSettings:
    """How the next token is picked.

    Attributes:
        do_sample: False for greedy decoding (the arg-max token; ``temperature`` and ``top_p`` unused).
        temperature: divides the logits before sampling.
        top_p: nucleus threshold (1 keeps every token). No top-k filter is ever applied.
    """

    do_sample: bool
    temperature: float = 1.0
    top_p: float = 1.0

    def generate_kwargs(self) -> dict[str, object]:
        """The sampling arguments of ``transformers``' ``generate`` (``top_k=0`` turns its default top-k off).

        Example:
            >>> SamplingSettings(do_sample=False).generate_kwargs()
            {'do_sample': False}
            >>> SamplingSettings(True, 0.9, 0.95).generate_kwargs()
            {'do_sample': True, 'temperature': 0.9, 'top_p': 0.95, 'top_k': 0}
        """
        if not self.do_sample:
            return {"do_sample": False}
        return {"do_sample": True, "temperature": self.temperature, "top_p": self.top_p, "top_k": 0}


class GenerationBackend(ABC):
    """How a policy turns encoded prompts into completion tokens; set in YAML with ``class_path``.

    Subclasses implement :meth:`generate`, and :meth:`check` when a model can be refused before training.
    A backend holds settings only: no weights, no cache, no compiled graph of its own that outlives a call (a
    compiled function that reads the module's parameters as inputs is fine), so an optimizer step or an
    in-place interpolation of the weights (MetaLoop) is seen by the next rollout.
    """

    def check(self, model: nn.Module, key: str = GENERATION_KEY) -> None:
        """Refuse, when the policy is built, a model or setting this backend cannot generate with.

        Args:
            model: the policy's model (a ``PeftModel`` when LoRA is on).
            key: the config key of this backend, for the error message.
        """
        return None  # nothing to refuse by default

    @abstractmethod
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
        """Generate up to ``max_new_tokens`` tokens after every prompt row.

        Args:
            model: the causal LM, in eval mode, its weights gathered already when the policy unshards them.
            tokenizer: gives ``pad_token_id`` and ``eos_token_id``.
            prompt_ids: ``[N, P]`` left-padded prompt ids.
            prompt_mask: ``[N, P]`` 1 on prompt tokens, 0 on padding.
            max_new_tokens: the completion length limit.
            sampling: greedy or sampled, temperature and top-p.
            logits_processor: processors to run on the next-token scores before picking (the policy passes a
                :class:`~pareto_lightning.finite.FiniteLogitsGuard`).
            sharded: the model's parameters are FSDP2 shards (``DTensor``).
            synced_gpus: the weights are not gathered for the rollout, so every forward all-gathers and the
                ranks must keep stepping together until all are done.

        Returns:
            ``[N, T]`` the new token ids only (``T <= max_new_tokens``); anything after a row's first EOS is
            ignored by the policy.
        """


def bucketed_length(length: int, multiple: int, limit: int | None = None) -> int:
    """``length`` rounded up to a multiple of ``multiple``, but not above ``limit`` (nor below ``length``).

    A compiled decode step sees a static cache of ``prompt + max_new_tokens`` columns; rounding prompt lengths
    up to a few buckets keeps that shape, and so the compiled graph, the same from rollout to rollout.

    Example:
        >>> bucketed_length(23, 64), bucketed_length(64, 64), bucketed_length(65, 64)
        (64, 64, 128)
        >>> bucketed_length(100, 64, limit=112), bucketed_length(120, 64, limit=112)
        (112, 120)
    """
    rounded = -(-length // multiple) * multiple
    if limit is not None:
        rounded = min(rounded, limit)
    return max(rounded, length)


def left_pad(ids: Tensor, mask: Tensor, length: int, pad_token_id: int) -> tuple[Tensor, Tensor]:
    """Add padding columns on the left of ``ids [N, P]`` and ``mask [N, P]`` up to ``length`` columns.

    Example:
        >>> ids, mask = left_pad(torch.tensor([[0, 7], [8, 9]]), torch.tensor([[0, 1], [1, 1]]), 4, 0)
        >>> ids.tolist(), mask.tolist()
        ([[0, 0, 0, 7], [0, 0, 8, 9]], [[0, 0, 0, 1], [0, 0, 1, 1]])
    """
    extra = length - ids.shape[1]
    if extra <= 0:
        return ids, mask
    pad_ids = ids.new_full((ids.shape[0], extra), pad_token_id)  # [N, extra]
    return torch.cat([pad_ids, ids], 1), torch.cat([mask.new_zeros((mask.shape[0], extra)), mask], 1)


def right_pad_rows(rows: list[list[int]], pad_token_id: int, device: torch.device | str = "cpu") -> Tensor:
    """Token lists of different lengths as one ``[N, T]`` tensor, padded on the right.

    Example:
        >>> right_pad_rows([[5, 2], [5, 6, 7]], pad_token_id=0).tolist()
        [[5, 2, 0], [5, 6, 7]]
    """
    width = max((len(r) for r in rows), default=0)
    out = torch.full((len(rows), width), pad_token_id, dtype=torch.long)  # [N, T]
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    return out.to(device)


__all__ = [
    "GENERATION_KEY",
    "GenerationBackend",
    "SamplingSettings",
    "bucketed_length",
    "left_pad",
    "right_pad_rows",
]
