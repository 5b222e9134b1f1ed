"""Completion log-probs of a causal LM without its full ``[N, T, V]`` logits.

The model runs its usual forward pass; two hooks on its output layer (``lm_head``) take over the last step. The
pre-hook keeps the layer's input (the last hidden states of the completion positions) and hands the layer an
empty slice, so it computes no logits; the post-hook returns, in place of the logits, the log-probs computed
chunk by chunk from that input and the layer's weight (:func:`~pareto_lightning.losses.chunked_token_log_probs`).

Why hooks inside the model's own forward rather than calling its decoder body and reading ``lm_head.weight``
afterwards: under FSDP2 (:mod:`pareto_lightning.sharding`) the root unit owns the output layer (and the tied
input embeddings); its parameters are gathered only between the root's pre-forward and post-forward hooks, and
outside them ``lm_head.weight`` is a sharded ``DTensor``. Inside the forward the hooks see the gathered weight
(in the mixed-precision policy's dtype), and the log-probs leave the model as its ``logits`` output, the tensor
FSDP2 registers its pre-backward hook on: the backward pass gathers the root's parameters again (after
``reshard_after_forward``) before the log-probs' backward recomputes the chunks' logits, and the weight's
gradient lands in the gathered parameter that FSDP2 reduce-scatters, exactly as for a plain ``lm_head``. (Kept
out of the model's outputs, their backward would find the weight's storage freed by the reshard after forward.)
Should the weight still be a ``DTensor`` when the layer runs (another parallelism), nothing is intercepted and
the full logits are used.
"""

from __future__ import annotations

from typing import Any

import torch
from peft import PeftModel
from torch import Tensor, nn
from transformers import PreTrainedModel

from pareto_lightning.losses.chunked_logprobs import chunked_token_log_probs
from pareto_lightning.losses.logprobs import token_log_probs
from pareto_lightning.rollout import Rollout, position_ids

#: Model types whose causal-LM head returns ``lm_head(last_hidden_state)`` unchanged (checked for each one in
#: ``tests/unit/policy/test_chunked_log_probs.py``). Others may scale or soft-cap the logits after the output
#: layer (Gemma 2/3, Cohere, Granite) and keep the full-logits path.
PLAIN_OUTPUT_LAYER_TYPES = frozenset(
    {"gemma", "gpt2", "gpt_neox", "llama", "mistral", "olmo2", "opt", "phi", "phi3", "qwen2", "qwen2_moe",
     "qwen3", "qwen3_moe", "smollm3"}
)  # fmt: skip


def completion_inputs(rollout: Rollout) -> dict[str, Tensor]:
    """The forward inputs that score a rollout: prompt and completion ids, mask and positions ``[N, P+T]``."""
    input_ids = torch.cat([rollout.prompt_ids, rollout.completion_ids], 1)  # [N, P+T]
    attention = torch.cat([rollout.prompt_mask, torch.ones_like(rollout.completion_mask)], 1)  # [N, P+T]
    positions = position_ids(attention)  # [N, P+T] as generate() assigned them to left-padded rows
    return {"input_ids": input_ids, "attention_mask": attention, "position_ids": positions}


def output_layer(model: nn.Module) -> nn.Linear | None:
    """The output layer whose input is the last hidden state and whose output is the model's logits, or None.

    None when the logits are more than a linear map of the last hidden state (a model type outside
    :data:`PLAIN_OUTPUT_LAYER_TYPES`), or when the layer is not a plain ``nn.Linear`` (a LoRA adapter or a
    ``modules_to_save`` copy on ``lm_head``, a quantized layer, an ``lm_head`` sharded as its own FSDP2 unit):
    those keep the full-logits path. A LoRA model's own layer is found through its base model.

    Example:
        >>> from pareto_lightning.tasks import LexiconLM
        >>> model = LexiconLM(seed=0)
        >>> output_layer(model) is model.lm_head, output_layer(nn.Linear(2, 2))
        (True, None)
    """
    base = model.get_base_model() if isinstance(model, PeftModel) else model
    if not isinstance(base, PreTrainedModel) or base.config.model_type not in PLAIN_OUTPUT_LAYER_TYPES:
        return None
    head = base.get_output_embeddings()
    # Exactly nn.Linear: a subclass (a quantized layer, an output layer made its own FSDP2 unit) may compute
    # its output differently or hold its weight differently.
    return head if type(head) is nn.Linear and head.weight.dtype.is_floating_point else None


def chunked_completion_log_probs(
    model: nn.Module, head: nn.Linear, rollout: Rollout, temperature: float, chunk_size: int
) -> Tensor:
    """Per-token log-probs ``[N, T]`` of the completion tokens, ``chunk_size`` positions of logits at a time.

    One forward pass of ``model`` (a causal LM, possibly LoRA-wrapped or FSDP2-sharded) whose output layer
    ``head`` (from :func:`output_layer`) is intercepted as the module docstring explains.

    Args:
        model: the causal LM (the policy's model or a frozen reference).
        head: its output layer.
        rollout: the prompts and completions to score.
        temperature: softmax temperature of the log-probs.
        chunk_size: positions whose logits exist at one time.
    """
    targets = rollout.completion_ids  # [N, T]
    hooks = _OutputLayerHooks(targets, temperature, chunk_size)
    handles = [
        head.register_forward_pre_hook(hooks.take_input),
        head.register_forward_hook(hooks.give_log_probs),
    ]
    try:
        out = model(**completion_inputs(rollout), logits_to_keep=targets.shape[1] + 1, use_cache=False)
    finally:
        for handle in handles:
            handle.remove()
    if hooks.intercepted:
        return out.logits[..., 0]  # [N, T]: the log-probs came out in the logits' place
    return token_log_probs(out.logits[:, :-1], targets, temperature)  # [N, T]


class _OutputLayerHooks:
    """The pair of output-layer hooks of one forward pass."""

    def __init__(self, targets: Tensor, temperature: float, chunk_size: int) -> None:
        self.targets, self.temperature, self.chunk_size = targets, temperature, chunk_size
        self.hidden: Tensor | None = None
        self.intercepted = False

    def take_input(self, layer: nn.Linear, args: tuple[Any, ...]) -> tuple[Tensor] | None:
        from torch.distributed.tensor import DTensor

        if len(args) != 1 or isinstance(layer.weight, DTensor):
            return None  # not a plain call on gathered weights: the layer computes the full logits
        # [N, T+1, H]: position i predicts token i + 1; the last one predicts past the completion.
        hidden = args[0]
        self.hidden = hidden[:, :-1]  # [N, T, H]
        return (hidden[:, :0],)  # [N, 0, H]: the layer computes no logits

    def give_log_probs(self, layer: nn.Linear, args: tuple[Any, ...], output: Tensor) -> Tensor | None:
        if self.hidden is None:
            return None
        hidden, self.hidden = self.hidden, None
        logp = chunked_token_log_probs(
            hidden, layer.weight, self.targets, self.temperature, self.chunk_size, layer.bias
        )  # [N, T] float32
        self.intercepted = True
        # A fresh tensor, not a view: FSDP2 hooks its backward on the outputs and warns about views.
        return logp.unsqueeze(-1).clone()  # [N, T, 1] in the logits' place


__all__ = ["PLAIN_OUTPUT_LAYER_TYPES", "chunked_completion_log_probs", "completion_inputs", "output_layer"]
