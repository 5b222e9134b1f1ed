"""An LLM judge: a frozen local causal LM asked a Yes/No question about each response.

The score is the judge's log-odds of "Yes" against "No" as the next token after the question,
``log sum_{y in Yes} p(y) - log sum_{n in No} p(n)``, or its logistic ``P(Yes | Yes or No)`` in ``[0, 1]``.
Only one forward pass per text, no sampling: the score is deterministic and cheap next to generation.
"""

from __future__ import annotations

import copy
import string
from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn
from transformers import AutoModelForCausalLM, PreTrainedModel, PreTrainedTokenizerBase

from pareto_lightning.conditioning import chat_prompt
from pareto_lightning.loading import load_tokenizer, model_or_load, resolve_dtype
from pareto_lightning.rewards.hf_reward_model import _no_autocast
from pareto_lightning.rewards.scorers import FUNCTION_KEY, raise_problems
from pareto_lightning.rollout import position_ids

DEFAULT_JUDGE_TEMPLATE = "Request: {prompt}\n\nResponse: {completion}\n\n{question} Answer Yes or No."
"""What the judge reads (as a user message when its tokenizer has a chat template)."""


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


class LLMJudge(nn.Module):
    """Scores ``(prompt, completion)`` pairs by a causal LM's answer to ``question``: ``P(Yes)`` or its log-odds.

    Each pair is rendered with ``template``; with a chat template (and ``chat`` not False) the text is a user
    message followed by the assistant's turn, otherwise ``"\\nAnswer:"`` is appended. The next-token logits are
    compared over the ``yes`` and ``no`` tokens (each string must be a single token; several spellings are
    summed, so "Yes" and " Yes" both count). Texts longer than ``max_length`` tokens lose their *start* (the
    question and the answer slot at the end stay). Frozen and always in eval mode; as an ``nn.Module`` it follows
    the LightningModule to its device.

    Args:
        name_or_path: a Hub id or local folder of a causal LM, or a built model.
        tokenizer: its tokenizer or where to load it from; None loads it from ``name_or_path``.
        question: the Yes/No question (e.g. "Is this response helpful?", "Is this response detailed?").
        template: how prompt, response and question are laid out; fields ``{prompt}``, ``{completion}`` and
            ``{question}``.
        yes: single-token spellings of the positive answer.
        no: single-token spellings of the negative answer.
        output: ``"probability"`` (in ``[0, 1]``) or ``"log_odds"``.
        chat: use the tokenizer's chat template (None: when it has one).
        batch_size: texts per forward pass (does not change the scores).
        max_length: longest text in judge tokens.
        dtype: the judge's dtype, a ``torch.dtype`` or its name; None keeps the loaded dtype.
        trust_remote_code: allow custom model code from the Hub (off unless you trust the repository).
        objective: the objective this judge scores (e.g. ``"helpfulness"``); given, it must be the name of its
            slot in ``MultiObjectiveReward``. None: unchecked.
        key: this judge's config key, quoted in errors (the command line sets it to
            ``model.init_args.reward.init_args.functions[<k>]``).

    Example:
        >>> from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
        >>> from tokenizers import Tokenizer, models, pre_tokenizers
        >>> vocab = {w: i for i, w in enumerate(["<unk>", "<eos>", "Yes", "No", "Answer", ":", "hi"])}
        >>> backend = Tokenizer(models.WordLevel(vocab, "<unk>")); backend.pre_tokenizer = pre_tokenizers.Whitespace()
        >>> tok = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<eos>", unk_token="<unk>")
        >>> cfg = LlamaConfig(vocab_size=7, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        ...                   num_attention_heads=2, num_key_value_heads=1)
        >>> judge = LLMJudge(LlamaForCausalLM(cfg), tokenizer=tok, yes=["Yes"], no=["No"])
        >>> scores = judge(["hi", "hi"], ["hi", "hi hi"])
        >>> scores.shape, bool(((scores > 0) & (scores < 1)).all())
        (torch.Size([2]), True)
    """

    def __init__(
        self,
        name_or_path: str | PreTrainedModel,
        tokenizer: str | PreTrainedTokenizerBase | None = None,
        question: str = "Is this response helpful?",
        template: str = DEFAULT_JUDGE_TEMPLATE,
        yes: Sequence[str] = ("Yes", " Yes"),
        no: Sequence[str] = ("No", " No"),
        output: Literal["probability", "log_odds"] = "probability",
        chat: bool | None = None,
        batch_size: int = 8,
        max_length: int = 512,
        dtype: str | torch.dtype | None = None,
        trust_remote_code: bool = False,
        objective: str | None = None,
        key: str = FUNCTION_KEY,
    ) -> None:
        super().__init__()
        self.key, self.objective = key, objective
        checks = [
            (bool(question.strip()), "question", "must be a non-empty question"),
            (_fields(template) == {"prompt", "completion", "question"}, "template",
             f"must contain exactly the fields {{prompt}}, {{completion}} and {{question}}; got {template!r}"),
            (bool(yes) and bool(no), "yes", "and `no` must each list at least one spelling"),
            (output in ("probability", "log_odds"), "output", f"must be 'probability' or 'log_odds'; got {output!r}"),
            (batch_size >= 1, "batch_size", f"must be >= 1; got {batch_size}"),
            (max_length >= 8, "max_length", f"must be >= 8; got {max_length}"),
        ]  # fmt: skip
        raise_problems("LLMJudge", checks, key)
        self.question, self.template, self.output = question, template, output
        self.batch_size, self.max_length = batch_size, max_length
        torch_dtype = resolve_dtype(dtype, f"{key}.init_args.dtype")
        model, self.name_or_path = model_or_load(name_or_path, AutoModelForCausalLM, f"{key}.init_args.name_or_path",
                                                 "judge model", torch_dtype, trust_remote_code)  # fmt: skip
        self.model = model.requires_grad_(False)
        self.tokenizer = self._load_tokenizer(tokenizer, trust_remote_code)
        self.chat = bool(getattr(self.tokenizer, "chat_template", None)) if chat is None else chat
        self.register_buffer("yes_ids", self._token_ids(yes, "yes"), persistent=False)
        self.register_buffer("no_ids", self._token_ids(no, "no"), persistent=False)
        shared = set(self.yes_ids.tolist()) & set(self.no_ids.tolist())
        raise_problems(
            "LLMJudge", [(not shared, "no", "shares a token with `yes`; give distinct answers")], key
        )
        self.train(False)

    def _load_tokenizer(self, tokenizer, trust_remote_code: bool) -> PreTrainedTokenizerBase:
        if isinstance(tokenizer, PreTrainedTokenizerBase):
            tok = copy.deepcopy(tokenizer)  # the padding settings below must not leak to the caller's copy
        else:
            source = str(tokenizer) if tokenizer is not None else self.name_or_path
            if not source:
                raise ValueError(
                    f"`{self.key}.init_args.tokenizer` is required when the judge is given as a model object."
                )
            tok = load_tokenizer(
                source, f"{self.key}.init_args.tokenizer", trust_remote_code=trust_remote_code
            )
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token if tok.eos_token is not None else tok.unk_token
        tok.padding_side, tok.truncation_side = "left", "left"  # the answer slot is the last position
        return tok

    def _token_ids(self, spellings: Sequence[str], name: str) -> Tensor:
        ids = []
        for spelling in spellings:
            encoded = self.tokenizer(spelling, add_special_tokens=False)["input_ids"]
            if len(encoded) != 1:
                raise ValueError(
                    f"`{self.key}.init_args.{name}`: {spelling!r} is {len(encoded)} tokens for the judge's "
                    "tokenizer; each spelling must be one token (try it with and without a leading space)."
                )
            ids.append(encoded[0])
        return torch.tensor(sorted(set(ids)))

    def train(self, mode: bool = True) -> LLMJudge:
        """Always eval mode: the judge is frozen, whatever the trainer asks."""
        return super().train(False)

    def format(self, prompts: Sequence[str], completions: Sequence[str]) -> list[str]:
        """The texts the judge reads, one per pair (chat template applied when used)."""
        if len(prompts) != len(completions):
            raise ValueError(
                f"LLMJudge got {len(prompts)} prompts but {len(completions)} completions; they must pair up."
            )
        texts = [self.template.format(prompt=p, completion=c, question=self.question)
                 for p, c in zip(prompts, completions, strict=True)]  # fmt: skip
        if not self.chat:
            return [t + "\nAnswer:" for t in texts]
        return [chat_prompt(None, t, self.tokenizer) for t in texts]  # the one prompt layout, no system line

    def forward(self, prompts: Sequence[str], completions: Sequence[str]) -> Tensor:
        """``[N]`` float32 scores on the judge's device: ``P(Yes)`` or the log-odds (``output``)."""
        texts = self.format(prompts, completions)
        device = self.yes_ids.device
        chunks = []
        for start in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(texts[start : start + self.batch_size], padding=True, truncation=True,
                                   max_length=self.max_length, add_special_tokens=not self.chat,
                                   return_tensors="pt").to(device)  # fmt: skip
            mask = batch["attention_mask"]  # [b, L]
            with torch.inference_mode(), _no_autocast(device):
                logits = self.model(input_ids=batch["input_ids"], attention_mask=mask,
                                    position_ids=position_ids(mask), logits_to_keep=1).logits[:, -1]  # fmt: skip
            logits = logits.float()  # [b, V]
            log_odds = logits[:, self.yes_ids].logsumexp(-1) - logits[:, self.no_ids].logsumexp(-1)  # [b]
            chunks.append(log_odds.sigmoid() if self.output == "probability" else log_odds)
        # Concatenating outside inference mode gives an ordinary tensor, usable in autograd-recorded maths.
        return torch.cat(chunks) if chunks else torch.zeros(0, device=device)


__all__ = ["DEFAULT_JUDGE_TEMPLATE", "LLMJudge"]
