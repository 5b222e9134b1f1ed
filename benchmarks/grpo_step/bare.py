"""The limit: the same GRPO step as a plain PyTorch loop, with no Lightning and no library module.

Per step: take the next ``NUM_PROMPTS`` conditioned prompts (the texts TRL trains on), tokenize them, sample
``NUM_GENERATIONS`` completions each with ``transformers``' ``generate``, cut each after its first
end-of-sequence token, decode, score with the shared reward code, form group-scaled advantages, one forward
for the per-token log-probs (and one no-grad forward of the frozen reference when ``beta > 0``), the GRPO
loss with the k3 KL term and the per-sequence mean, backward, an AdamW step (torch's default implementation,
as ours) and ``zero_grad``. Only the reward code (``MultiObjectiveReward``, ``SmoothTchebycheff``) and the
prompt texts come from the library. Every phase is timed, so the profile can set ours against it. A LoRA
model wraps the model with ``peft``, AdamW gets the adapter's parameters, and the reference forward runs with
the adapter disabled.
"""

from __future__ import annotations

import contextlib
import copy

import torch
from torch import Tensor, nn
from transformers import AutoModelForCausalLM, AutoTokenizer

from .measure import Clock, PhaseClock, SideRun
from .workload import (
    LEARNING_RATE,
    NUM_GENERATIONS,
    NUM_PROMPTS,
    Cell,
    conditioned_dataset,
    generation_settings,
    lora_config,
    utility_function,
)

EPSILON, STD_EPS = 0.2, 1e-4


def completion_log_probs(
    model: nn.Module, prompt_ids: Tensor, prompt_mask: Tensor, completion: Tensor
) -> Tensor:
    """Per-token log-probs ``[N, T]`` of the completion tokens, in one forward of the prompt and completion.

    Positions count from each left-padded row's first real token, as ``generate`` numbered them; only the
    last ``T + 1`` positions get logits.
    """
    input_ids = torch.cat([prompt_ids, completion], 1)  # [N, P+T]
    attention = torch.cat([prompt_mask, torch.ones_like(completion)], 1)  # [N, P+T]
    positions = (attention.cumsum(-1) - 1).clamp_min(0)  # [N, P+T]
    t = completion.shape[1]
    logits = model(
        input_ids=input_ids, attention_mask=attention, position_ids=positions, logits_to_keep=t + 1
    ).logits[:, :-1]  # [N, T, V]
    return logits.gather(-1, completion.unsqueeze(-1)).squeeze(-1) - logits.logsumexp(-1)  # [N, T]


def grpo_step_loss(
    logp: Tensor, ref_logp: Tensor | None, utilities: Tensor, mask: Tensor, group: int, beta: float
) -> Tensor:
    """GRPO loss of one rollout used once (ratio 1, clipped at ``1 +- EPSILON``), k3 KL, per-sequence mean.

    Args:
        logp: ``[N, T]`` log-probs with grad.
        ref_logp: ``[N, T]`` reference log-probs, or ``None`` when ``beta == 0``.
        utilities: ``[N]`` scalarized rewards, the rows of a prompt consecutive.
        mask: ``[N, T]`` 1 on completion tokens.
        group: completions per prompt.
        beta: KL coefficient.

    Example:
        >>> logp = torch.zeros(4, 2, requires_grad=True)
        >>> grpo_step_loss(logp, None, torch.tensor([0.0, 1.0, 2.0, 2.0]), torch.ones(4, 2), 2, 0.0)
        tensor(0., grad_fn=<MeanBackward0>)
    """
    grouped = utilities.view(-1, group)  # [B, G]
    advantages = (grouped - grouped.mean(-1, keepdim=True)) / (grouped.std(-1, keepdim=True) + STD_EPS)
    advantages = advantages.reshape(-1, 1)  # [N, 1]
    ratio = torch.exp(logp - logp.detach())  # [N, T] exactly 1, with the policy gradient
    per_token = -torch.minimum(
        ratio * advantages, ratio.clamp(1 - EPSILON, 1 + EPSILON) * advantages
    )  # [N, T]
    if ref_logp is not None and beta > 0:
        d = ref_logp - logp  # [N, T]
        per_token = per_token + beta * (torch.exp(d) - d - 1)
    weight = mask.to(logp.dtype)  # [N, T]
    return ((per_token * weight).sum(-1) / weight.sum(-1).clamp(min=1.0)).mean()


def run_bare(folder: str, cell: Cell, steps: int, seed: int) -> SideRun:
    """Run ``steps`` bare steps of ``cell`` and return what was measured (with per-phase times).

    Args:
        folder: the model folder.
        cell: the setting.
        steps: steps to run, warm-up included.
        seed: the seed of sampling, prompt order and the prompts' preferences.
    """
    torch.set_num_threads(cell.threads)
    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(folder).train()
    reference, adapter_off = None, contextlib.nullcontext
    if cell.lora:
        from peft import get_peft_model

        model = get_peft_model(model, lora_config())
        reference, adapter_off = (model if cell.beta > 0 else None), model.disable_adapter
    elif cell.beta > 0:
        reference = copy.deepcopy(model).eval().requires_grad_(False)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=LEARNING_RATE, weight_decay=0.0)
    prompts, texts, weights = conditioned_dataset(model, tokenizer, seed)
    reward, scalarizer = utility_function()
    sampling = generation_settings(cell.forced)
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    order = torch.randperm(len(texts)).tolist()
    run, clock, phases = SideRun(), Clock(), PhaseClock()
    for step in range(steps):
        clock.start()
        with phases.phase("generation"):
            rows = [order[(step * NUM_PROMPTS + i) % len(order)] for i in range(NUM_PROMPTS)]
            enc = tokenizer(
                [texts[i] for i in rows], return_tensors="pt", padding=True, add_special_tokens=False
            )
            prompt_ids = enc["input_ids"].repeat_interleave(NUM_GENERATIONS, 0)  # [N, P]
            prompt_mask = enc["attention_mask"].repeat_interleave(NUM_GENERATIONS, 0)  # [N, P]
            model.eval()  # as ours: no dropout while sampling
            out = model.generate(
                input_ids=prompt_ids,
                attention_mask=prompt_mask,
                pad_token_id=pad,
                eos_token_id=eos,
                **sampling,
            )
            model.train()
            completion = out[:, prompt_ids.shape[1] :]  # [N, T]
            is_eos = completion == eos  # [N, T]
            after = (is_eos.cumsum(-1) - is_eos.long()) > 0  # [N, T] strictly after the first EOS
            completion, mask = completion.masked_fill(after, pad), ~after  # [N, T] each
            decoded = tokenizer.batch_decode(completion, skip_special_tokens=True)
        with phases.phase("rewards"):
            raw_prompts = [prompts[i] for i in rows for _ in range(NUM_GENERATIONS)]
            _, normalized = reward(raw_prompts, decoded)  # [N, K]
            w = weights[rows].repeat_interleave(NUM_GENERATIONS, 0)  # [N, K]
            utilities = scalarizer(normalized, w.to(normalized.dtype))  # [N]
        with phases.phase("policy log-probs"):
            logp = completion_log_probs(model, prompt_ids, prompt_mask, completion)  # [N, T]
        ref_logp = None
        if reference is not None:
            with phases.phase("reference log-probs"), torch.no_grad(), adapter_off():
                ref_logp = completion_log_probs(reference, prompt_ids, prompt_mask, completion)  # [N, T]
        with phases.phase("loss maths"):
            loss = grpo_step_loss(logp, ref_logp, utilities, mask, NUM_GENERATIONS, cell.beta)
        with phases.phase("backward"):
            loss.backward()
        with phases.phase("optimizer"):
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        clock.stop()
        phases.step()
        run.record_completions(mask.sum(-1).tolist(), int((is_eos & mask).any(-1).sum()))
    run.wall, run.cpu, run.phases, run.threads = clock.wall, clock.cpu, phases.steps, torch.get_num_threads()
    return run
