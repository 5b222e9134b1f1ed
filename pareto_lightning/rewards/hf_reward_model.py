"""A frozen Hugging Face sequence-classification reward model that scores text (paper section A.2).

The paper scores completions with ``Ray2333/gpt2-large-helpful-reward_model`` and
``Ray2333/gpt2-large-harmless-reward_model``. Their tokenizer differs from the policy's, so the reward model
receives *strings* and re-tokenizes them with its own tokenizer: token ids never cross between models.
"""

from __future__ import annotations

import copy
import string
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext

import torch
from torch import Tensor, nn
from transformers import (
    AutoModelForSequenceClassification,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from pareto_lightning.loading import load_tokenizer, model_or_load, resolve_dtype
from pareto_lightning.renamed import old_names
from pareto_lightning.rewards.scorers import FUNCTION_KEY

HH_TEMPLATE = "\n\nHuman: {prompt} \n\nAssistant: {completion}"
"""The Anthropic-HH conversation format the paper's GPT-2 reward models were trained on."""


def _check_template(template: str, key: str) -> str:
    fields = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    if fields != {"prompt", "completion"}:
        raise ValueError(
            f"`template` must contain exactly the fields {{prompt}} and {{completion}} ({key}.init_args.template); "
            f"got fields {sorted(fields)} in {template!r}."
        )
    return template


def _no_autocast(device: torch.device) -> AbstractContextManager:
    """Autocast turned off on ``device`` (a no-op where autocast does not exist for that device type)."""
    available = getattr(torch.amp, "is_autocast_available", lambda t: t in ("cpu", "cuda"))
    if available(device.type):
        return torch.autocast(device.type, enabled=False)
    return nullcontext()


class HFRewardModel(nn.Module):
    """Scores ``(prompt, completion)`` strings with a frozen ``AutoModelForSequenceClassification``.

    Each pair is rendered with ``template``, tokenized by the reward model's *own* tokenizer, and scored in
    mini-batches under ``torch.inference_mode``; the score is ``logits[:, 0]``. The model is frozen
    (``requires_grad=False``) and always in eval mode: ``train()`` keeps it in eval, so dropout never perturbs
    a reward. As an ``nn.Module`` it follows the LightningModule to its device; it is never trainable.

    Texts longer than ``max_length`` tokens are truncated on the right: the template's opening (the prompt
    turn) stays intact and a long completion is judged on its first ``max_length`` tokens. Choose
    ``max_length`` at least the prompt length plus the policy's ``max_new_tokens`` (in reward-model tokens) to
    score whole texts.

    A tokenizer without a pad token gets its eos token as pad (GPT-2's case), and
    ``model.config.pad_token_id`` is set to match so the model reads the last non-pad token of each row.

    Args:
        name_or_path: a Hub id or local folder (loaded with ``from_pretrained``), or an already built model.
        tokenizer: the reward model's tokenizer, or a Hub id / folder to load it from; ``None`` loads it from
            ``name_or_path`` (from ``model.name_or_path`` when a model is given).
        template: format string with the fields ``{prompt}`` and ``{completion}``.
        max_length: truncation length in reward-model tokens, capped at the model's position limit.
        batch_size: texts scored per forward pass (does not change the scores).
        dtype: model dtype, a ``torch.dtype`` or its name (``"bfloat16"``); ``None`` keeps the loaded dtype.
        trust_remote_code: allow custom model code from the Hub (off unless you trust the repository).
        objective: the objective this model scores (e.g. ``"helpfulness"``); given, it must be the name of its
            slot in ``MultiObjectiveReward`` (a model put in another objective's slot is refused). None: unchecked.
        key: this reward model's config key, quoted in errors (the command line sets it to
            ``model.init_args.reward.init_args.functions[<k>]``).

    Example:
        >>> from transformers import GPT2Config, GPT2ForSequenceClassification, GPT2TokenizerFast
        >>> from tokenizers import Tokenizer, models
        >>> vocab = {"[UNK]": 0, "<eos>": 1}
        >>> backend = Tokenizer(models.WordLevel(vocab, "[UNK]"))
        >>> tok = GPT2TokenizerFast(tokenizer_object=backend, eos_token="<eos>")
        >>> cfg = GPT2Config(vocab_size=2, n_positions=32, n_layer=1, n_embd=8, n_head=2, num_labels=1)
        >>> model = GPT2ForSequenceClassification(cfg)
        >>> rm = HFRewardModel(model, tokenizer=tok, template="Q: {prompt} A: {completion}", max_length=32)
        >>> rm.format(["2+2?"], ["4"])
        ['Q: 2+2? A: 4']
        >>> rm(["2+2?", "3+3?"], ["4", "6"]).shape
        torch.Size([2])
        >>> rm.train().training, any(p.requires_grad for p in rm.parameters())
        (False, False)
    """

    def __init__(
        self,
        name_or_path: str | PreTrainedModel,
        tokenizer: str | PreTrainedTokenizerBase | None = None,
        template: str = HH_TEMPLATE,
        max_length: int = 512,
        batch_size: int = 16,
        dtype: str | torch.dtype | None = None,
        trust_remote_code: bool = False,
        objective: str | None = None,
        key: str = FUNCTION_KEY,
    ) -> None:
        super().__init__()
        self.key, self.objective = key, objective
        if max_length < 1:
            raise ValueError(f"`max_length` must be >= 1 ({key}.init_args.max_length); got {max_length}.")
        if batch_size < 1:
            raise ValueError(f"`batch_size` must be >= 1 ({key}.init_args.batch_size); got {batch_size}.")
        self.template, self.max_length, self.batch_size = (
            _check_template(template, key),
            max_length,
            batch_size,
        )
        torch_dtype = resolve_dtype(dtype, f"{key}.init_args.dtype")
        model, self.name_or_path = model_or_load(name_or_path, AutoModelForSequenceClassification,
                                                 f"{key}.init_args.name_or_path", "reward model", torch_dtype,
                                                 trust_remote_code)  # fmt: skip
        self.model = model
        self.tokenizer = self._load_tokenizer(tokenizer, trust_remote_code)
        limit = getattr(model.config, "max_position_embeddings", None)
        if isinstance(limit, int) and limit < self.max_length:
            self.max_length = limit  # longer inputs would index past the position embeddings
        if model.config.pad_token_id is None:
            model.config.pad_token_id = self.tokenizer.pad_token_id
        self.model.requires_grad_(False)
        self.train(False)

    def _load_tokenizer(
        self, tokenizer: str | PreTrainedTokenizerBase | None, trust_remote_code: bool
    ) -> PreTrainedTokenizerBase:
        if isinstance(tokenizer, PreTrainedTokenizerBase):
            tok = copy.deepcopy(
                tokenizer
            )  # the pad/truncation settings below must not leak to the caller's copy
        else:
            source = str(tokenizer) if tokenizer is not None else self.name_or_path
            if not source:
                raise ValueError(
                    f"`tokenizer` is required when the reward model is passed as an object without a "
                    f"`name_or_path` ({self.key}.init_args.tokenizer)."
                )
            tok = load_tokenizer(
                source, f"{self.key}.init_args.tokenizer", trust_remote_code=trust_remote_code
            )
        if tok.pad_token is None:
            if tok.eos_token is None:
                raise ValueError(
                    f"the tokenizer of reward model {self.name_or_path!r} has neither a pad nor an eos "
                    f"token; pass a tokenizer with a pad token ({self.key}.init_args.tokenizer)."
                )
            tok.pad_token = tok.eos_token
        tok.truncation_side = "right"
        return tok

    def train(self, mode: bool = True) -> HFRewardModel:
        """Always eval mode: the reward model is frozen, whatever the trainer asks (see the class example)."""
        return super().train(False)

    @property
    def device(self) -> torch.device:
        """The device of the model's weights (where scores are returned)."""
        return next(self.model.parameters()).device

    def format(self, prompts: Sequence[str], completions: Sequence[str]) -> list[str]:
        """Render each ``(prompt, completion)`` pair with the template (see the class example)."""
        if len(prompts) != len(completions):
            raise ValueError(
                f"HFRewardModel got {len(prompts)} prompts but {len(completions)} completions; "
                f"they must pair up."
            )
        return [
            self.template.format(prompt=p, completion=c) for p, c in zip(prompts, completions, strict=True)
        ]

    def forward(self, prompts: Sequence[str], completions: Sequence[str]) -> Tensor:
        """Score each pair.

        Args:
            prompts: ``N`` prompt strings.
            completions: ``N`` completion strings.

        Returns:
            ``[N]`` float32 scores on the model's device.
        """
        texts = self.format(prompts, completions)
        device = self.device
        chunks = []
        for start in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(
                texts[start : start + self.batch_size],
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            ).to(device)
            # In the model's own dtype: Lightning's "bf16-mixed" autocast around the step must not recast it.
            with torch.inference_mode(), _no_autocast(device):
                logits = self.model(
                    input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
                ).logits
            chunks.append(logits[:, 0].float())  # [b]
        # Concatenating outside inference mode gives an ordinary tensor, usable in autograd-recorded maths.
        return torch.cat(chunks) if chunks else torch.zeros(0, device=device)


__all__ = ["HH_TEMPLATE", "HFRewardModel"]

__getattr__ = old_names(__name__)  # the old names of renamed objects (pareto_lightning.renamed)
