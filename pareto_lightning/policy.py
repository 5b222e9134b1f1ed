"""The preference-conditioned policy: any Hugging Face causal LM that reads ``w`` from its prompt.

It conditions (writes ``w`` into the prompt), generates and scores (per-token log-probs). Loading lives in
:mod:`pareto_lightning.loading`, the rollout and its token maths in :mod:`pareto_lightning.rollout`, and the
frozen reference with the algorithm module, which decides ``beta``.
"""

from __future__ import annotations

import copy
import os
import warnings
from collections.abc import Sequence
from contextlib import nullcontext

import torch
from peft import LoraConfig
from torch import Tensor, nn
from transformers import AutoModelForCausalLM, LogitsProcessorList, PreTrainedModel, PreTrainedTokenizerBase

from pareto_lightning.conditioning import (
    DEFAULT_PLAIN_TEMPLATE,
    PREFERENCE_TEMPLATE,
    check_prompt_format,
    conditioned_prompt,
)
from pareto_lightning.finite import FiniteLogitsGuard
from pareto_lightning.generation import GenerationBackend, HFGeneration, SamplingSettings
from pareto_lightning.generation.model_config import sampling_only
from pareto_lightning.loading import DTYPES as _DTYPES
from pareto_lightning.loading import enable_activation_checkpointing, load_pretrained, load_tokenizer
from pareto_lightning.losses.logprobs import token_log_probs
from pareto_lightning.preferences import validate_preference
from pareto_lightning.rollout import Rollout, completion_mask
from pareto_lightning.scoring import chunked_completion_log_probs, completion_inputs, output_layer
from pareto_lightning.sharding import unsharded

_KEY = "model.init_args.policy.init_args"


def _whole(value: object, least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


class PreferencePolicy(nn.Module):
    """A causal LM conditioned on a preference ``w`` written into its prompt.

    Args:
        model: a Hub name or local path (loaded with ``AutoModelForCausalLM``) or a ready ``PreTrainedModel``.
        tokenizer: name/path or object; defaults to the model's own (``AutoTokenizer`` on the same path).
        objective_names: one name per objective, written into the prompt (``K = len(objective_names)``).
        max_new_tokens: completion length limit.
        temperature: sampling temperature (the paper uses 0.9); log-probs use the same temperature.
        top_p: nucleus sampling threshold.
        dtype: ``"float32"``, ``"bfloat16"`` or ``"float16"`` for loading by name; None keeps the default.
        lora: a ``peft.LoraConfig``; when given only the adapter trains, and the algorithm module's reference is
            the base model with the adapter disabled (no second copy of the weights).
        conditioning_template: the preference sentence (a system message with a chat template); ``{weights}``
            becomes ``name=value`` pairs.
        plain_prompt_template: prompt layout without a chat template, with fields ``{preference}`` and
            ``{prompt}`` (default: the preference line first).
        weight_decimals: decimals used to write ``w`` (2 matches Table 1's precision). Training and evaluation
            weights that need more are refused when fitting starts (the model would be told another preference
            than it is scored under); weights drawn from the continuous simplex are written rounded.
        max_prompt_length: conditioned prompts longer than this many tokens are refused with an error (never
            silently cut: cutting from the left would drop the preference). None: what the model can hold, its
            ``max_position_embeddings`` minus ``max_new_tokens`` (no check for a model that declares no limit).
            A value above that is refused.
        trust_remote_code: passed to the loaders; off unless turned on.
        unshard_for_generation: under FSDP2, gather the full weights once per rollout instead of once per
            generated token (faster; needs memory for one full copy of the weights per rank while generating).
        generation: the generation backend (:mod:`pareto_lightning.generation`), set with ``class_path``; None
            is :class:`~pareto_lightning.generation.HFGeneration` (``model.generate``). Every backend runs inside
            the gathered-weights context above and returns the same ``Rollout``.
        activation_checkpointing: recompute each decoder layer's activations in the backward pass instead of
            storing them (the training pass then holds about one layer's activations plus each layer's input,
            for about a third more compute); it works under FSDP2 and with LoRA.
        cudnn_attention: allow PyTorch's cuDNN attention kernel on CUDA. Off by default: on Hopper GPUs its
            backward pass returns NaN query gradients for padded batches with an explicit mask (pytorch issue
            196678), so the algorithm modules turn the kernel off for the process when training on CUDA
            (:func:`~pareto_lightning.finite.use_safe_attention_kernels`); the other SDPA kernels give the same
            values.
        logprob_chunk_size: compute the log-probs from the output layer this many token positions at a time,
            forming each chunk's logits again in the backward pass, so the ``[N, T, V]`` logits never exist
            (the same values and gradients; memory grows with ``logprob_chunk_size * V``, and the backward pass
            does one more output-layer product). None: the full logits, which models whose logits are more than
            their output layer's output use anyway (:data:`~pareto_lightning.scoring.PLAIN_OUTPUT_LAYER_TYPES`).

    Example:
        >>> from pareto_lightning.tasks import LexiconLM, LexiconTokenizer
        >>> policy = PreferencePolicy(LexiconLM(), LexiconTokenizer(), max_new_tokens=4)
        >>> rollout = policy.generate(["write a note about the river"], torch.tensor([[0.7, 0.3]]), 2)
        >>> rollout.completion_ids.shape[0], len(rollout.completions), rollout.weights.shape
        (2, 2, torch.Size([2, 2]))
    """

    def __init__(
        self,
        model: str | PreTrainedModel,
        tokenizer: str | PreTrainedTokenizerBase | None = None,
        objective_names: Sequence[str] = ("helpfulness", "harmlessness"),
        max_new_tokens: int = 128,
        temperature: float = 0.9,
        top_p: float = 1.0,
        dtype: str | None = None,
        lora: LoraConfig | None = None,
        conditioning_template: str = PREFERENCE_TEMPLATE,
        plain_prompt_template: str = DEFAULT_PLAIN_TEMPLATE,
        weight_decimals: int = 2,
        max_prompt_length: int | None = None,
        trust_remote_code: bool = False,
        unshard_for_generation: bool = True,
        generation: GenerationBackend | None = None,
        activation_checkpointing: bool = False,
        cudnn_attention: bool = False,
        logprob_chunk_size: int | None = 512,
    ) -> None:
        super().__init__()
        checks = [
            (len(objective_names) >= 2, "objective_names", f"needs >= 2 names; got {list(objective_names)}"),
            (max_new_tokens >= 1, "max_new_tokens", f"must be >= 1; got {max_new_tokens}"),
            (temperature > 0, "temperature", f"must be > 0; got {temperature}"),
            (0 < top_p <= 1, "top_p", f"must be in (0, 1]; got {top_p}"),
            (dtype is None or dtype in _DTYPES, "dtype", f"must be one of {sorted(_DTYPES)} or null; got {dtype!r}"),
            ("{weights}" in conditioning_template, "conditioning_template", "must contain the field {weights}"),
            ("{preference}" in plain_prompt_template and "{prompt}" in plain_prompt_template,
             "plain_prompt_template", "must contain the fields {preference} and {prompt}"),
            (_whole(weight_decimals, 0), "weight_decimals", f"must be an integer >= 0; got {weight_decimals!r}"),
            (max_prompt_length is None or _whole(max_prompt_length, 1), "max_prompt_length",
             f"must be an integer >= 1 or null; got {max_prompt_length!r}"),
            (logprob_chunk_size is None or _whole(logprob_chunk_size, 1), "logprob_chunk_size",
             f"must be an integer >= 1 or null; got {logprob_chunk_size!r}"),
        ]  # fmt: skip
        problems = [f"`{_KEY}.{name}` {message}." for ok, name, message in checks if not ok]
        if problems:
            raise ValueError("invalid PreferencePolicy configuration:\n  " + "\n  ".join(problems))
        self.objective_names = list(objective_names)
        self.max_new_tokens, self.temperature, self.top_p = max_new_tokens, temperature, top_p
        self.conditioning_template, self.weight_decimals = conditioning_template, weight_decimals
        self.plain_prompt_template = plain_prompt_template
        self.unshard_for_generation = unshard_for_generation
        self.cudnn_attention = cudnn_attention
        self.logprob_chunk_size = logprob_chunk_size
        self.model = self._load_model(model, dtype, trust_remote_code)
        # Sampled as the log-probs assume: softmax(z / temperature), cut at top_p.
        dropped = sampling_only(self.model)
        if dropped:
            warnings.warn(
                f"the model's generation_config asks for {', '.join(dropped)}; dropped, so that completions are "
                f"sampled from softmax(logits / temperature) cut at top_p, the distribution whose log-probs the "
                f"losses and the KL use (`{_KEY}.temperature`, `{_KEY}.top_p` set the sampling).",
                stacklevel=2,
            )
        self.generation = self._generation_backend(generation)
        self.max_prompt_length = self._prompt_limit(max_prompt_length)
        check_prompt_format(getattr(self.model, "prompt_format", None), self.prompt_format, _KEY)
        self.tokenizer = self._load_tokenizer(tokenizer, model, trust_remote_code)
        if activation_checkpointing:
            enable_activation_checkpointing(self.model, _KEY + ".activation_checkpointing")
        self.uses_lora = lora is not None
        if lora is not None:
            from peft import get_peft_model

            self.model = get_peft_model(self.model, lora)

    def _generation_backend(self, backend: GenerationBackend | None) -> GenerationBackend:
        """The backend (``generation``; None: ``HFGeneration``), checked against the loaded model."""
        backend = HFGeneration() if backend is None else backend
        if not isinstance(backend, GenerationBackend):
            raise TypeError(
                f"`{_KEY}.generation` must be a pareto_lightning.generation.GenerationBackend (set it with "
                f"class_path, e.g. pareto_lightning.generation.HFGeneration); got {backend!r}."
            )
        backend.check(self.model, _KEY + ".generation")
        return backend

    def _prompt_limit(self, given: int | None) -> int | None:
        """``max_prompt_length``: by default what the model holds (its positions minus ``max_new_tokens``)."""
        # A Hugging Face config names the limit `max_position_embeddings` (GPT-2's `n_positions` maps to it).
        positions = getattr(getattr(self.model, "config", None), "max_position_embeddings", None)
        self.max_positions = positions if _whole(positions, 1) else None
        if given is None and self.max_positions is not None and self.max_positions > self.max_new_tokens:
            return self.max_positions - self.max_new_tokens
        return given

    def check_context(self) -> None:
        """Refuse lengths the model cannot hold: a prompt of ``max_prompt_length`` tokens followed by
        ``max_new_tokens`` must fit in its ``max_position_embeddings`` (the algorithm modules call this at setup).

        Example:
            >>> from pareto_lightning.tasks import LexiconLM, LexiconTokenizer
            >>> PreferencePolicy(LexiconLM(), LexiconTokenizer(), max_new_tokens=16).max_prompt_length  # 128 - 16
            112
            >>> PreferencePolicy(LexiconLM(), LexiconTokenizer(), max_new_tokens=128).check_context()
            Traceback (most recent call last):
            ...
            ValueError: `model.init_args.policy.init_args.max_new_tokens`=128 leaves no room for a prompt: ...
        """
        positions, new = self.max_positions, self.max_new_tokens
        if positions is None:
            return
        if new >= positions:
            raise ValueError(
                f"`{_KEY}.max_new_tokens`={new} leaves no room for a prompt: the model holds {positions} positions "
                "(its max_position_embeddings); lower max_new_tokens."
            )
        if self.max_prompt_length is not None and self.max_prompt_length + new > positions:
            raise ValueError(
                f"`{_KEY}.max_prompt_length`={self.max_prompt_length} plus `{_KEY}.max_new_tokens`={new} is more "
                f"than the {positions} positions the model holds (its max_position_embeddings); lower one of them "
                f"(max_prompt_length left null is {positions - new})."
            )

    @property
    def num_objectives(self) -> int:
        return len(self.objective_names)

    @property
    def prompt_format(self) -> dict:
        """How this policy writes ``w`` into its prompts (a model trained on another layout is refused)."""
        names = ("objective_names", "conditioning_template", "plain_prompt_template", "weight_decimals")
        return {name: getattr(self, name) for name in names}

    @staticmethod
    def _load_model(
        model: str | PreTrainedModel, dtype: str | None, trust_remote_code: bool
    ) -> PreTrainedModel:
        if isinstance(model, str):
            return load_pretrained(AutoModelForCausalLM, model, _KEY + ".model", "policy model",
                                   dtype=_DTYPES.get(dtype or ""), trust_remote_code=trust_remote_code)  # fmt: skip
        if not isinstance(model, nn.Module):
            raise TypeError(f"`{_KEY}.model` must be a name/path or a PreTrainedModel; got {model!r}.")
        return model

    @staticmethod
    def _load_tokenizer(tokenizer, model, trust_remote_code: bool) -> PreTrainedTokenizerBase:
        if tokenizer is None:
            if not isinstance(model, str):
                raise ValueError(
                    "`model.init_args.policy.init_args.tokenizer` is required when the model is given as an object."
                )
            tokenizer = model
        if isinstance(tokenizer, str):
            tokenizer = load_tokenizer(tokenizer, _KEY + ".tokenizer", trust_remote_code=trust_remote_code)
        tokenizer.padding_side = "left"  # batched generation needs the prompts to end at the same column
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        return tokenizer

    # ---------------------------------------------------------------------------------------------- generation
    def conditioned_prompts(self, prompts: Sequence[str], weights: Tensor) -> list[str]:
        """The prompt texts the model sees, one per row of ``weights``."""
        return [
            conditioned_prompt(p, w, self.objective_names, self.tokenizer, self.conditioning_template,
                               self.weight_decimals, self.plain_prompt_template)
            for p, w in zip(prompts, weights, strict=True)
        ]  # fmt: skip

    def _token_lengths(self, prompts: Sequence[str], weights: Tensor) -> list[int]:
        texts = self.conditioned_prompts(prompts, weights)
        return [len(ids) for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]]

    def _check_length(self, num_tokens: int, what: str) -> None:
        if self.max_prompt_length is not None and num_tokens > self.max_prompt_length:
            raise ValueError(
                f"{what} has {num_tokens} tokens, more than `model.init_args.policy.init_args.max_prompt_length`="
                f"{self.max_prompt_length}; shorten the prompts (`data.init_args.max_prompt_chars`) or raise the "
                "limit."
            )

    def check_prompt_lengths(
        self,
        prompts: Sequence[str],
        weights: Tensor,
        key: str,
        exact_pairs: int = 20_000,
        candidates: int = 16,
    ) -> None:
        """Refuse, before any training step, a prompt that is too long under one of ``weights``.

        Pairs are written and tokenized as generation would write them, so the check holds whatever digits and
        names a weight adds. Every (prompt, weight) pair is tokenized when there are at most ``exact_pairs`` of
        them. A larger set (a training split) is checked in two passes: every prompt under the first weight, then
        the ``candidates`` longest of those under every weight; this is exact whenever the preference adds the
        same tokens whatever the prompt (a system message, a separate line). Nothing to do without
        ``max_prompt_length``.

        Args:
            prompts: the prompts (for example the evaluation prompts).
            weights: ``[M, K]`` the preferences they are used with.
            key: the config key of the prompts, quoted in the error.
            exact_pairs: the most (prompt, weight) pairs tokenized one by one.
            candidates: how many of the longest prompts the second pass checks under every weight.

        Example:
            >>> from pareto_lightning.tasks import LexiconLM, LexiconTokenizer
            >>> policy = PreferencePolicy(LexiconLM(), LexiconTokenizer(), max_prompt_length=12)
            >>> policy.check_prompt_lengths(["write a note about the river"], torch.tensor([[0.7, 0.3]]),
            ...                             key="data.init_args.eval_prompts")
            Traceback (most recent call last):
            ...
            ValueError: the longest prompt of `data.init_args.eval_prompts` under its preferences (...) has 23 ...
        """
        if self.max_prompt_length is None or not len(prompts):
            return
        if len(prompts) * len(weights) > exact_pairs:
            first = self._token_lengths(list(prompts), weights[:1].expand(len(prompts), -1))
            longest = sorted(range(len(prompts)), key=first.__getitem__)[-candidates:]
            prompts = [prompts[i] for i in longest]
        pairs = [(p, w) for w in weights for p in prompts]
        lengths = self._token_lengths([p for p, _ in pairs], torch.stack([w for _, w in pairs]))
        worst = max(range(len(lengths)), key=lengths.__getitem__)
        w = ", ".join(f"{x:.{self.weight_decimals}f}" for x in pairs[worst][1].tolist())
        self._check_length(
            lengths[worst],
            f"the longest prompt of `{key}` under its preferences ({pairs[worst][0][:40]!r} at w=({w}))",
        )

    @property
    def is_sharded(self) -> bool:
        from torch.distributed.tensor import DTensor

        return any(isinstance(p, DTensor) for p in self.model.parameters())

    @torch.no_grad()
    def generate(
        self, prompts: Sequence[str], weights: Tensor, num_generations: int = 1, do_sample: bool = True
    ) -> Rollout:
        """Sample ``num_generations`` completions per prompt under its preference.

        Args:
            prompts: ``B`` prompt strings.
            weights: ``[B, K]`` preferences (any point of the simplex, seen in training or not).
            num_generations: ``G`` completions per prompt; all share the prompt's ``w``.
            do_sample: False for greedy decoding (evaluation).

        Raises:
            NonFiniteError: the model's next-token scores held NaN/inf (its weights or inputs do); sampling is
                not attempted on them, so on CUDA the process stays usable (a crash checkpoint can be written).
        """
        if len(prompts) == 0:
            raise ValueError("`prompts` is empty: a batch needs at least one prompt.")
        if isinstance(num_generations, bool) or not isinstance(num_generations, int) or num_generations < 1:
            raise ValueError(f"`num_generations` must be an integer >= 1; got {num_generations!r}.")
        weights = validate_preference(weights, self.num_objectives, key="weights")
        if weights.dim() != 2 or weights.shape[0] != len(prompts):
            raise ValueError(f"`weights` must be [B={len(prompts)}, K]; got {tuple(weights.shape)}.")
        # Lightning evaluates under `torch.inference_mode` (it switches to `no_grad` for some strategies, not for
        # ModelParallelStrategy). FSDP2 would then allocate its all-gather buffers as inference tensors, and every
        # later unshard fails ("Inference tensors do not track version counter"). A sharded model generates in
        # normal no-grad mode instead; an unsharded one keeps whatever mode the caller chose.
        mode = torch.inference_mode(False) if self.is_sharded else nullcontext()
        with mode:
            return self._generate(list(prompts), weights.clone(), num_generations, do_sample)

    def _generate(
        self, prompts: list[str], weights: Tensor, num_generations: int, do_sample: bool
    ) -> Rollout:
        texts = self.conditioned_prompts(prompts, weights)
        device = next(self.model.parameters()).device
        enc = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
        self._check_length(enc["input_ids"].shape[1], "a conditioned prompt")
        prompt_ids = enc["input_ids"].repeat_interleave(num_generations, 0)  # [N, P]
        prompt_mask = enc["attention_mask"].repeat_interleave(num_generations, 0)  # [N, P]
        was_training = self.model.training
        self.model.eval()  # no dropout while sampling
        # Sharded and gathered once: forwards need no communication, ranks may stop at different lengths.
        # Sharded and not gathered: every forward all-gathers, so ranks must step together until all are done
        # (transformers does not detect fully_shard by itself).
        sharded = self.is_sharded
        gather = unsharded(self.model) if self.unshard_for_generation else nullcontext()
        sampling = SamplingSettings(do_sample, self.temperature, self.top_p)
        guard = FiniteLogitsGuard()
        try:
            with gather:  # around the whole backend call: one gather per rollout, whichever the backend
                new_ids = self.generation.generate(
                    self.model,
                    self.tokenizer,
                    prompt_ids,
                    prompt_mask,
                    max_new_tokens=self.max_new_tokens,
                    sampling=sampling,
                    logits_processor=LogitsProcessorList([guard]),
                    sharded=sharded,
                    synced_gpus=sharded and not self.unshard_for_generation,
                )  # [N, T] the new tokens
        finally:
            self.model.train(was_training)
        guard.raise_if_found("while generating (before sampling)")
        mask, completion_ids = completion_mask(
            new_ids, self.tokenizer.eos_token_id, self.tokenizer.pad_token_id
        )  # [N, T] each
        completions = self.tokenizer.batch_decode(completion_ids, skip_special_tokens=True)
        return Rollout(
            prompts=[p for p in prompts for _ in range(num_generations)],
            prompt_ids=prompt_ids,
            prompt_mask=prompt_mask,
            completion_ids=completion_ids,
            completion_mask=mask,
            completions=completions,
            weights=weights.repeat_interleave(num_generations, 0),
            group_size=num_generations,
        )

    # ----------------------------------------------------------------------------------------------- log-probs
    def completion_logits(self, rollout: Rollout, model: nn.Module | None = None) -> Tensor:
        """Raw next-token logits ``[N, T, V]`` at the completion positions (of ``model`` when given), one forward."""
        model = self.model if model is None else model
        t = rollout.completion_ids.shape[1]
        logits = model(**completion_inputs(rollout), logits_to_keep=t + 1).logits  # [N, T+1, V]
        return logits[:, :-1]  # [N, T, V]: logits at position i predict token i + 1

    def log_probs(self, rollout: Rollout, model: nn.Module | None = None) -> Tensor:
        """Per-token log-probs ``[N, T]`` of the completion tokens, in one forward pass (of ``model``, e.g. a
        frozen reference, when given).

        With ``logprob_chunk_size`` set they come from the output layer chunk by chunk, the logits formed again
        in the backward pass (:func:`~pareto_lightning.scoring.chunked_completion_log_probs`, which also says
        how this works under FSDP2); otherwise from the full ``[N, T, V]`` logits of :meth:`completion_logits`.
        """
        model = self.model if model is None else model
        head = None if self.logprob_chunk_size is None else output_layer(model)
        targets = rollout.completion_ids  # [N, T]
        if head is None:
            return token_log_probs(self.completion_logits(rollout, model), targets, self.temperature)
        return chunked_completion_log_probs(model, head, rollout, self.temperature, self.logprob_chunk_size)

    def save_pretrained(self, directory: str | os.PathLike, merge_lora: bool = True) -> None:
        """Write a normal Hugging Face model (and tokenizer) that ``AutoModelForCausalLM`` loads.

        With LoRA, ``merge_lora=True`` merges the adapter into a copy of the base weights; False saves the adapter.
        """
        model = self.model
        if self.uses_lora and merge_lora:
            model = copy.deepcopy(self.model).merge_and_unload()
        model.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)


__all__ = ["PreferencePolicy", "Rollout"]
