"""The preference-conditioned policy: any Hugging Face causal LM that reads ``w`` from its prompt."""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass

import torch
from peft import LoraConfig
from torch import Tensor, nn
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from pareto_lightning.conditioning import DEFAULT_PLAIN_TEMPLATE, DEFAULT_TEMPLATE, conditioned_prompt
from pareto_lightning.loading import check_pretrained_source
from pareto_lightning.losses.logprobs import token_log_probs
from pareto_lightning.preferences import validate_preference
from pareto_lightning.sharding import unsharded

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class Rollout:
    """``N = B * G`` sampled completions; rows ``g*G .. g*G+G-1`` belong to prompt ``g`` and share its ``w``."""

    prompts: list[str]  # [N] the raw prompts (without conditioning), repeated G times
    prompt_ids: Tensor  # [N, P] left-padded conditioned prompts
    prompt_mask: Tensor  # [N, P]
    completion_ids: Tensor  # [N, T] right-padded after EOS
    completion_mask: Tensor  # [N, T] 1 up to and including the first EOS
    completions: list[str]  # [N] decoded completion texts
    weights: Tensor  # [N, K]
    group_size: int

    def __len__(self) -> int:
        return len(self.completions)

    def select_groups(self, keep: Tensor) -> Rollout:
        """The rollout of the groups where ``keep [B]`` is True (rows of a group stay together)."""
        rows = keep.to(self.weights.device).repeat_interleave(self.group_size)  # [N]
        index = rows.nonzero().squeeze(-1).tolist()
        return Rollout(
            prompts=[self.prompts[i] for i in index],
            prompt_ids=self.prompt_ids[rows.to(self.prompt_ids.device)],
            prompt_mask=self.prompt_mask[rows.to(self.prompt_mask.device)],
            completion_ids=self.completion_ids[rows.to(self.completion_ids.device)],
            completion_mask=self.completion_mask[rows.to(self.completion_mask.device)],
            completions=[self.completions[i] for i in index],
            weights=self.weights[rows],
            group_size=self.group_size,
        )


def load_error(what: str, name: str, key: str, err: Exception) -> OSError:
    """One clear message for a model or tokenizer that cannot be loaded (typically: no Hub access)."""
    return OSError(
        f"could not load {what} '{name}' ({key}): the Hugging Face Hub must be reachable, or give a local path "
        f"(a folder written by save_pretrained). Original error: {type(err).__name__}: {err}"
    )


def _enable_activation_checkpointing(model: nn.Module) -> None:
    if not getattr(model, "supports_gradient_checkpointing", False):
        raise ValueError(
            f"`model.init_args.policy.init_args.activation_checkpointing` needs a transformers model that supports it; "
            f"{type(model).__name__} does not."
        )
    # Non-reentrant checkpointing: needs no inputs that require grad (LoRA) and composes with FSDP2's hooks.
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


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
        lora: a ``peft.LoraConfig``; when given only the adapter trains and the reference model is the base model
            with the adapter disabled (no second copy of the weights).
        conditioning_template: the preference sentence (a system message with a chat template); ``{weights}``
            becomes ``name=value`` pairs.
        plain_prompt_template: prompt layout without a chat template, with fields ``{preference}`` and
            ``{prompt}`` (default: the preference line first).
        weight_decimals: decimals used to write ``w`` (2 matches Table 1's precision).
        max_prompt_length: conditioned prompts longer than this many tokens are refused with an error (never
            silently cut: cutting from the left would drop the preference). None disables the check.
        trust_remote_code: passed to the loaders; off unless turned on.
        unshard_for_generation: under FSDP2, gather the full weights once per rollout instead of once per
            generated token (faster; needs memory for one full copy of the weights per rank while generating).
        activation_checkpointing: recompute each decoder layer's activations in the backward pass instead of
            storing them (the training pass then holds about one layer's activations plus each layer's input,
            for about a third more compute); it works under FSDP2 and with LoRA.

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
        conditioning_template: str = DEFAULT_TEMPLATE,
        plain_prompt_template: str = DEFAULT_PLAIN_TEMPLATE,
        weight_decimals: int = 2,
        max_prompt_length: int | None = None,
        trust_remote_code: bool = False,
        unshard_for_generation: bool = True,
        activation_checkpointing: bool = False,
    ) -> None:
        super().__init__()
        problems = []
        if len(objective_names) < 2:
            problems.append(
                f"`model.init_args.policy.init_args.objective_names` needs >= 2 names; got {list(objective_names)}."
            )
        if max_new_tokens < 1:
            problems.append(
                f"`model.init_args.policy.init_args.max_new_tokens` must be >= 1; got {max_new_tokens}."
            )
        if not temperature > 0:
            problems.append(f"`model.init_args.policy.init_args.temperature` must be > 0; got {temperature}.")
        if not 0 < top_p <= 1:
            problems.append(f"`model.init_args.policy.init_args.top_p` must be in (0, 1]; got {top_p}.")
        if dtype is not None and dtype not in _DTYPES:
            problems.append(
                f"`model.init_args.policy.init_args.dtype` must be one of {sorted(_DTYPES)} or null; got {dtype!r}."
            )
        if "{weights}" not in conditioning_template:
            problems.append(
                "`model.init_args.policy.init_args.conditioning_template` must contain the field {weights}."
            )
        if "{preference}" not in plain_prompt_template or "{prompt}" not in plain_prompt_template:
            problems.append(
                "`model.init_args.policy.init_args.plain_prompt_template` must contain the fields {preference} and "
                "{prompt}."
            )
        if problems:
            raise ValueError("invalid PreferencePolicy configuration:\n  " + "\n  ".join(problems))
        self.objective_names = list(objective_names)
        self.max_new_tokens, self.temperature, self.top_p = max_new_tokens, temperature, top_p
        self.conditioning_template, self.weight_decimals = conditioning_template, weight_decimals
        self.plain_prompt_template = plain_prompt_template
        self.max_prompt_length = max_prompt_length
        self.unshard_for_generation = unshard_for_generation
        self.model = self._load_model(model, dtype, trust_remote_code)
        self._check_prompt_format(self.model)
        self.tokenizer = self._load_tokenizer(tokenizer, model, trust_remote_code)
        if activation_checkpointing:
            _enable_activation_checkpointing(self.model)
        self.uses_lora = lora is not None
        if lora is not None:
            from peft import get_peft_model

            self.model = get_peft_model(self.model, lora)
        # The frozen reference is kept out of the module tree (a list hides it from .parameters(), state_dict and
        # the optimizer); the algorithm module creates it only when beta > 0 and moves it with the policy.
        self._reference: list[PreTrainedModel] = []

    @property
    def num_objectives(self) -> int:
        return len(self.objective_names)

    @staticmethod
    def _load_model(
        model: str | PreTrainedModel, dtype: str | None, trust_remote_code: bool
    ) -> PreTrainedModel:
        if not isinstance(model, str):
            if not isinstance(model, nn.Module):
                raise TypeError(
                    f"`model.init_args.policy.init_args.model` must be a name/path or a PreTrainedModel; got {model!r}."
                )
            return model
        check_pretrained_source(model, "model.init_args.policy.init_args.model", "policy model")
        kwargs = {"trust_remote_code": trust_remote_code}
        if dtype is not None:
            kwargs["dtype"] = _DTYPES[dtype]
        try:
            return AutoModelForCausalLM.from_pretrained(model, **kwargs)
        except (OSError, ValueError) as err:
            raise load_error("policy model", model, "model.init_args.policy.init_args.model", err) from err

    def _check_prompt_format(self, model: nn.Module) -> None:
        """Refuse a model trained on another prompt layout than this policy writes.

        A model may declare the layout it was trained to read as ``model.prompt_format`` (the built-in task's
        ``LexiconInstructLM`` does); a policy that wrote ``w`` differently would silently train a model that
        cannot read it.
        """
        expected = getattr(model, "prompt_format", None)
        if not expected:
            return
        mine = {
            "objective_names": self.objective_names,
            "conditioning_template": self.conditioning_template,
            "plain_prompt_template": self.plain_prompt_template,
            "weight_decimals": self.weight_decimals,
        }
        problems = [
            f"`model.init_args.policy.init_args.{k}`={mine[k]!r} but the model was trained on "
            f"`model.init_args.policy.init_args.model.init_args.{k}`={v!r}"
            for k, v in expected.items()
            if k in mine and v != mine[k]
        ]
        if problems:
            raise ValueError(
                "the policy writes its prompts differently from how the model learned to read them:\n  "
                + "\n  ".join(problems)
                + "\nset each pair to the same value."
            )

    @staticmethod
    def _load_tokenizer(tokenizer, model, trust_remote_code: bool) -> PreTrainedTokenizerBase:
        if tokenizer is None:
            if not isinstance(model, str):
                raise ValueError(
                    "`model.init_args.policy.init_args.tokenizer` is required when the model is given as an object."
                )
            tokenizer = model
        if isinstance(tokenizer, str):
            check_pretrained_source(tokenizer, "model.init_args.policy.init_args.tokenizer", "tokenizer")
            try:
                tokenizer = AutoTokenizer.from_pretrained(tokenizer, trust_remote_code=trust_remote_code)
            except (OSError, ValueError) as err:
                raise load_error(
                    "tokenizer", tokenizer, "model.init_args.policy.init_args.tokenizer", err
                ) from err
        tokenizer.padding_side = "left"  # batched generation needs the prompts to end at the same column
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        return tokenizer

    # ----------------------------------------------------------------------------------------------- reference
    def create_reference(self) -> None:
        """Make the frozen reference (a copy of the base weights, or nothing extra with LoRA)."""
        if self.uses_lora or self._reference:
            return
        ref = copy.deepcopy(self.model).eval()
        ref.requires_grad_(False)
        self._reference.append(ref)

    @property
    def reference(self) -> nn.Module | None:
        return self._reference[0] if self._reference else None

    def _apply(self, fn, recurse=True):  # keeps the hidden reference on the policy's device and dtype
        super()._apply(fn, recurse)
        if self._reference:
            self._reference[0]._apply(fn, recurse)
        return self

    # ---------------------------------------------------------------------------------------------- generation
    def conditioned_prompts(self, prompts: Sequence[str], weights: Tensor) -> list[str]:
        """The prompt texts the model sees, one per row of ``weights``."""
        return [
            conditioned_prompt(p, w, self.objective_names, self.tokenizer, self.conditioning_template,
                               self.weight_decimals, self.plain_prompt_template)
            for p, w in zip(prompts, weights, strict=True)
        ]  # fmt: skip

    def _check_length(self, num_tokens: int, what: str) -> None:
        if self.max_prompt_length is not None and num_tokens > self.max_prompt_length:
            raise ValueError(
                f"{what} has {num_tokens} tokens, more than `model.init_args.policy.init_args.max_prompt_length`="
                f"{self.max_prompt_length}; shorten the prompts (`data.init_args.max_prompt_chars`) or raise the "
                "limit."
            )

    def check_prompt_lengths(self, prompts: Sequence[str], weights: Tensor, key: str) -> None:
        """Refuse, before any training step, a prompt that is too long under one of ``weights``.

        Every (prompt, weight) pair is written and tokenized as generation would write it, so the check holds
        whatever digits and names a weight adds. Nothing to do without ``max_prompt_length``.

        Args:
            prompts: the prompts (for example the evaluation prompts).
            weights: ``[M, K]`` the preferences they are used with.
            key: the config key of the prompts, quoted in the error.

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
        pairs = [(p, w) for w in weights for p in prompts]
        texts = self.conditioned_prompts([p for p, _ in pairs], torch.stack([w for _, w in pairs]))
        lengths = [len(ids) for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]]
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
        """
        if len(prompts) == 0:
            raise ValueError("`prompts` is empty: a batch needs at least one prompt.")
        if isinstance(num_generations, bool) or not isinstance(num_generations, int) or num_generations < 1:
            raise ValueError(f"`num_generations` must be an integer >= 1; got {num_generations!r}.")
        weights = validate_preference(weights, self.num_objectives, key="weights")
        if weights.dim() != 2 or weights.shape[0] != len(prompts):
            raise ValueError(f"`weights` must be [B={len(prompts)}, K]; got {tuple(weights.shape)}.")
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
        sampling = {"do_sample": True, "temperature": self.temperature, "top_p": self.top_p, "top_k": 0}
        with gather:
            out = self.model.generate(
                input_ids=prompt_ids,
                attention_mask=prompt_mask,
                max_new_tokens=self.max_new_tokens,
                pad_token_id=self.tokenizer.pad_token_id,
                eos_token_id=self.tokenizer.eos_token_id,
                synced_gpus=sharded and not self.unshard_for_generation,
                **(sampling if do_sample else {"do_sample": False}),
            )
        self.model.train(was_training)
        completion_ids = out[:, prompt_ids.shape[1] :]  # [N, T]
        is_eos = completion_ids == self.tokenizer.eos_token_id
        # Keep tokens up to and including the first EOS; everything after it is padding.
        after_eos = (is_eos.cumsum(-1) - is_eos.long()) > 0
        completion_mask = (~after_eos).long()  # [N, T]
        completion_ids = completion_ids.masked_fill(after_eos, self.tokenizer.pad_token_id)
        completions = self.tokenizer.batch_decode(completion_ids, skip_special_tokens=True)
        return Rollout(
            prompts=[p for p in prompts for _ in range(num_generations)],
            prompt_ids=prompt_ids,
            prompt_mask=prompt_mask,
            completion_ids=completion_ids,
            completion_mask=completion_mask,
            completions=completions,
            weights=weights.repeat_interleave(num_generations, 0),
            group_size=num_generations,
        )

    # ----------------------------------------------------------------------------------------------- log-probs
    def log_probs(self, rollout: Rollout, model: nn.Module | None = None) -> Tensor:
        """Per-token log-probs ``[N, T]`` of the completion tokens, in one forward pass."""
        model = self.model if model is None else model
        input_ids = torch.cat([rollout.prompt_ids, rollout.completion_ids], 1)  # [N, P+T]
        attention = torch.cat([rollout.prompt_mask, torch.ones_like(rollout.completion_mask)], 1)  # [N, P+T]
        # Position ids as generate() assigned them (left padding shifts every row differently).
        positions = (attention.cumsum(-1) - 1).clamp_min(0)  # [N, P+T]
        t = rollout.completion_ids.shape[1]
        logits = model(
            input_ids=input_ids, attention_mask=attention, position_ids=positions, logits_to_keep=t + 1
        ).logits[:, :-1]  # [N, T, V]: logits at position i predict token i + 1
        return token_log_probs(logits, rollout.completion_ids, self.temperature)

    @torch.no_grad()
    def reference_log_probs(self, rollout: Rollout) -> Tensor:
        """Per-token log-probs ``[N, T]`` under the reference model (the adapter disabled with LoRA)."""
        if self.uses_lora:
            with self.model.disable_adapter():
                return self.log_probs(rollout)
        if self.reference is None:
            raise RuntimeError(
                "no reference model: call create_reference() first (done by the module when beta > 0)."
            )
        return self.log_probs(rollout, self.reference)

    def save_pretrained(self, directory: str | os.PathLike, merge_lora: bool = True) -> None:
        """Write a normal Hugging Face model (and tokenizer) that ``AutoModelForCausalLM`` loads.

        With LoRA, ``merge_lora=True`` merges the adapter into a copy of the base weights; False saves the adapter.
        """
        model = self.model
        if self.uses_lora and merge_lora:
            model = copy.deepcopy(self.model).merge_and_unload()
        model.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)
