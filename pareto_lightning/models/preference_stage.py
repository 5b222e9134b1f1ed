"""A supervised stage that teaches a pretrained chat model to read the preference line: best-of-pool distillation.

A small instruct model follows a *style instruction* ("answer in very simple words") but ignores numbers such as
``Preference weights: simplicity=0.70, technicality=0.30``: SmolLM2-135M-Instruct writes the same text at every
``w``, and reinforcement learning from there does not find the conditioning in a CPU budget (the built-in task's
from-scratch row collapses for the same reason). The paper starts from a model that already reads its system prompt.
This stage builds one, in three steps, all with the recipe's own components:

1. **Pool.** For every training prompt, sample completions under each style instruction (one per objective, plus
   no instruction), with the policy's sampling settings.
2. **Select.** Score the pool with the recipe's ``MultiObjectiveReward``. For each prompt and each of several
   preferences ``w`` (uniform on the simplex, two decimals, some vertices), keep the completion of that prompt's
   pool that maximizes the recipe's scalarization ``S(r, w)``: best-of-``n`` under the training objective, as in
   rejection-sampling fine-tuning (Dong et al., "RAFT", 2023).
3. **Distill.** Train the LoRA adapter so that the model prompted with the *numeric* preference line matches, token
   by token on the kept completion, the ``w``-weighted blend of the base model's logits under each objective's
   instruction (:func:`mixture_distillation_loss`; context distillation, Snell et al., 2022, with a product of
   experts as the teacher). Then merge the adapter into the weights.

Step 3 matches whole next-token distributions. Maximum likelihood of the kept tokens alone (tried first, 2 epochs)
moved the log-likelihood of a simple completion between ``w = (1, 0)`` and ``(0, 1)`` by only 0.03 nats per token
relative to a technical one, and greedy decoding still ignored ``w``.

The result is a normal model folder; the ``recipes/smollm2`` recipes start from it, and its reference policy is
this folder (adapter disabled), as a recipe's reference is its supervised model::

    python -m pareto_lightning.models.preference_stage --recipe recipes/smollm2/weighted_meta.yaml

The maths is in :func:`best_of_pool` (the selection) and :func:`mixture_distillation_loss`; the rest is
orchestration.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from pareto_lightning.conditioning import chat_prompt
from pareto_lightning.rollout import Rollout, completion_mask

if TYPE_CHECKING:
    from pareto_lightning.policy import PreferencePolicy

DEFAULT_INSTRUCTIONS = (
    "Answer in very simple, short words, like talking to a small child.",
    "Answer in precise, technical detail, using the proper scientific terms.",
)
"""One style instruction per objective of the ``recipes/smollm2`` recipes (simplicity, technicality)."""


def best_of_pool(rewards: Tensor, weights: Tensor, scalarize: Callable[[Tensor, Tensor], Tensor]) -> Tensor:
    """For each prompt and preference, the index of the pool completion with the largest utility.

    Args:
        rewards: ``[P, N, K]`` rewards of ``N`` pooled completions per prompt.
        weights: ``[P, M, K]`` preferences, ``M`` per prompt.
        scalarize: ``S(rewards [..., K], weights [..., K]) -> [...]``, larger is better (a ``Scalarizer``).

    Returns:
        ``[P, M]`` indices into each prompt's pool.

    Example (completion 0 is simple, 1 technical, 2 in between; the linear utility picks by ``w``):
        >>> r = torch.tensor([[[0.9, 0.1], [0.1, 0.9], [0.6, 0.6]]])
        >>> w = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]])
        >>> best_of_pool(r, w, lambda r, w: (r * w).sum(-1)).tolist()
        [[0, 1, 2]]
    """
    if rewards.dim() != 3 or weights.dim() != 3 or rewards.shape[0] != weights.shape[0]:
        raise ValueError(f"need rewards [P, N, K] and weights [P, M, K]; got {tuple(rewards.shape)} and "
                         f"{tuple(weights.shape)}.")  # fmt: skip
    utility = scalarize(rewards[:, None, :, :], weights[:, :, None, :])  # [P, M, N]
    return utility.argmax(-1)


def instruction_prompt(prompt: str, instruction: str | None, tokenizer: object) -> str:
    """The chat text of ``prompt`` under a style instruction (a system message; None: no system message), in the
    policy's layout (:func:`~pareto_lightning.conditioning.chat_prompt`).

    Example:
        >>> class Plain: chat_template = None
        >>> instruction_prompt("Explain rain.", "Be brief.", Plain())
        'Be brief.\\nExplain rain.\\n'
    """
    return chat_prompt(instruction, prompt, tokenizer)


@torch.no_grad()
def sample_pool(
    policy: PreferencePolicy,
    prompts: Sequence[str],
    instructions: Sequence[str | None],
    samples: int,
    batch_size: int = 32,
) -> list[dict]:
    """``samples`` completions per prompt and instruction, with the policy's sampling settings.

    Returns one record per completion: ``{"prompt": i, "instruction": j, "ids": [...], "text": ...}`` (the ids stop
    after the first end of sequence).

    Example:
        >>> from pareto_lightning import PreferencePolicy
        >>> from pareto_lightning.tasks import LexiconLM, LexiconTokenizer
        >>> policy = PreferencePolicy(LexiconLM(seed=0), LexiconTokenizer(), max_new_tokens=3)
        >>> pool = sample_pool(policy, ["write a note"], ["helpful", None], samples=2)
        >>> [(r["prompt"], r["instruction"]) for r in pool], all(len(r["ids"]) <= 3 for r in pool)
        ([(0, 0), (0, 0), (0, 1), (0, 1)], True)
    """
    tok, model = policy.tokenizer, policy.model
    jobs = [(i, j) for j in range(len(instructions)) for i in range(len(prompts))]
    records: list[dict] = []
    model.eval()
    for start in range(0, len(jobs), batch_size):
        chunk = jobs[start : start + batch_size]
        texts = [instruction_prompt(prompts[i], instructions[j], tok) for i, j in chunk]
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        out = model.generate(**enc, max_new_tokens=policy.max_new_tokens, do_sample=True, top_k=0,
                             temperature=policy.temperature, top_p=policy.top_p, num_return_sequences=samples,
                             pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)  # fmt: skip
        mask, ids = completion_mask(out[:, enc["input_ids"].shape[1] :], tok.eos_token_id, tok.pad_token_id)
        for row, (m, seq) in enumerate(zip(mask, ids, strict=True)):
            i, j = chunk[row // samples]
            kept = seq[m.bool()].tolist()
            records.append({"prompt": i, "instruction": j, "ids": kept,
                            "text": tok.decode(kept, skip_special_tokens=True)})  # fmt: skip
    return records


def mixture_distillation_loss(
    student: Tensor, teachers: Tensor, weights: Tensor, mask: Tensor, temperature: float = 1.0
) -> Tensor:
    """Mean per-token ``KL(p_w || q)`` from the ``w``-weighted product of the teachers to the student.

    ``p_w = softmax(sum_k w_k z_k / tau)`` mixes the teachers' logits ``z_k`` (a product of experts, as in
    "language model arithmetic", Dekoninck et al., 2024): at a vertex it is teacher ``k`` itself, in between a
    geometric blend. ``q = softmax(z / tau)`` is the student; ``tau`` the sampling temperature.

    Args:
        student: ``[b, T, V]`` student logits.
        teachers: ``[K, b, T, V]`` teacher logits (teacher ``k`` is the model under objective ``k``'s instruction).
        weights: ``[b, K]`` preferences.
        mask: ``[b, T]`` 1 on the completion tokens to count.
        temperature: ``tau`` > 0.

    Example (one token, two words; the even blend of logits ``(0, 0)`` and ``(ln 3, 0)`` is ``(ln 3 / 2, 0)``,
    so ``p = (0.634, 0.366)``; against a uniform student the KL is ``0.634 ln 1.268 + 0.366 ln 0.732``):
        >>> import math
        >>> z = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0]]).view(2, 1, 1, 2)
        >>> loss = mixture_distillation_loss(torch.zeros(1, 1, 2), z, torch.tensor([[0.5, 0.5]]), torch.ones(1, 1))
        >>> round(loss.item(), 4)
        0.0363
    """
    target = torch.einsum("kbtv,bk->btv", teachers.float(), weights.float()) / temperature  # [b, T, V]
    log_p = torch.log_softmax(target, -1)
    log_q = torch.log_softmax(student.float() / temperature, -1)
    kl = (log_p.exp() * (log_p - log_q)).sum(-1)  # [b, T]
    return (kl * mask).sum() / mask.sum().clamp_min(1)


def _padded(sequences: Sequence[list[int]], pad: int) -> tuple[Tensor, Tensor]:
    """Right-padded ``[b, T]`` ids and their mask."""
    ids = torch.full((len(sequences), max(len(c) for c in sequences)), pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, c in enumerate(sequences):
        ids[row, : len(c)], mask[row, : len(c)] = torch.tensor(c, dtype=torch.long), 1
    return ids, mask


def distill(
    policy: PreferencePolicy,
    examples: Sequence[tuple[str, Tensor, list[int]]],
    instructions: Sequence[str],
    epochs: int,
    batch_size: int,
    learning_rate: float,
    generator: torch.Generator,
    log: Callable[[str], None] = print,
) -> list[float]:
    """Teach the adapter to read ``w``: on each kept completion, match the blend of the instructed base's logits.

    The teachers are the policy's base model (adapter disabled) prompted with each objective's style instruction;
    the student is the adapted model prompted with the *conditioned* prompt (the preference line). The loss is
    :func:`mixture_distillation_loss` at the policy's temperature, so the student learns the whole next-token
    distribution under every ``w``, not one sampled token.

    Args:
        policy: a :class:`~pareto_lightning.PreferencePolicy` with a LoRA adapter (its base is the teacher).
        examples: ``(prompt, w [K], completion token ids)`` triples.
        instructions: ``K`` style instructions, one per objective.
        epochs, batch_size, learning_rate: the AdamW schedule (constant rate).
        generator: the shuffling order.

    Returns:
        The mean loss (nats per completion token) of each epoch.
    """
    if not policy.uses_lora:
        raise ValueError("the preference stage needs a LoRA adapter (its base model is the teacher): set "
                         "`model.init_args.policy.init_args.lora` in the recipe.")  # fmt: skip
    tok, k = policy.tokenizer, len(instructions)
    params = [p for p in policy.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=learning_rate, weight_decay=0.0)
    losses = []
    for epoch in range(epochs):
        order, total, t0 = torch.randperm(len(examples), generator=generator).tolist(), 0.0, time.time()
        for start in range(0, len(order), batch_size):
            batch = [examples[i] for i in order[start : start + batch_size]]
            prompts, weights = [p for p, _, _ in batch], torch.stack([w for _, w, _ in batch])  # [b, K]
            ids, mask = _padded([c for _, _, c in batch], tok.pad_token_id)  # [b, T] each
            taught = [instruction_prompt(p, text, tok) for text in instructions for p in prompts]  # [K * b]
            enc = tok(taught, return_tensors="pt", padding=True, add_special_tokens=False)
            teacher = Rollout(taught, enc["input_ids"], enc["attention_mask"], ids.repeat(k, 1), mask.repeat(k, 1),
                              [""] * len(taught), weights.repeat(k, 1), 1)  # fmt: skip
            policy.model.eval()
            with torch.no_grad(), policy.model.disable_adapter():
                teachers = policy.completion_logits(teacher).view(k, len(batch), *ids.shape[1:], -1)  # [K, b, T, V]
            enc = tok(policy.conditioned_prompts(prompts, weights), return_tensors="pt", padding=True,
                      add_special_tokens=False)  # fmt: skip
            student = Rollout(prompts, enc["input_ids"], enc["attention_mask"], ids, mask, [""] * len(batch),
                              weights, 1)  # fmt: skip
            policy.model.train()
            loss = mixture_distillation_loss(policy.completion_logits(student), teachers, weights, mask,
                                             policy.temperature)  # fmt: skip
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        losses.append(total / len(examples))
        log(f"epoch {epoch + 1}/{epochs}: loss {losses[-1]:.4f} nats/token ({time.time() - t0:.0f} s)")
    policy.model.eval()
    return losses


def stage_digest(settings: dict) -> str:
    """A short key for a pool's settings (its cache file name).

    Example:
        >>> stage_digest({"a": 1}) == stage_digest({"a": 1}) != stage_digest({"a": 2})
        True
    """
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def _recipe_components(recipe: str, base: str, seed: int) -> tuple:
    """The recipe's policy (loaded from ``base``), reward, scalarizer and training prompts, built by its CLI."""
    from pareto_lightning.algorithms.base import PreferenceAlignmentModule
    from pareto_lightning.cli import ParetoCLI, short_errors
    from pareto_lightning.data import PreferencePromptDataModule
    from pareto_lightning.loading import check_pretrained_source

    check_pretrained_source(base, "--base", "pretrained model")
    if not os.path.isfile(recipe):
        raise FileNotFoundError(f"`--recipe`: no file {recipe!r} (run from the repository root, or give its path).")
    args = ["--config", recipe, f"--model.init_args.policy.init_args.model={base}", "--trainer.logger=false",
            f"--seed_everything={seed}"]  # fmt: skip
    argv, sys.argv = sys.argv, sys.argv[:1]  # the CLI reads only `args`, not this command's own flags
    try:
        with short_errors():
            cli = ParetoCLI(PreferenceAlignmentModule, PreferencePromptDataModule, subclass_mode_model=True,
                            subclass_mode_data=True, run=False, args=args)  # fmt: skip
    finally:
        sys.argv = argv
    module, data = cli.model, cli.datamodule
    data.setup("fit")
    return module.policy, module.reward, module.scalarizer, list(data.train_prompts)


def run_stage(args: argparse.Namespace) -> dict:
    """Pool, select, distill and save (see the module docstring); returns what it measured."""
    from pareto_lightning.tasks.instruct import two_decimal_weights

    policy, reward, scalarize, prompts = _recipe_components(args.recipe, args.base, args.seed)
    names = list(policy.objective_names)
    instructions = [*args.instructions, None]
    if len(args.instructions) != len(names):
        raise ValueError(f"`--instructions` needs one instruction per objective {names}; got {len(args.instructions)}.")
    os.makedirs(args.out, exist_ok=True)
    settings = {"base": os.path.abspath(os.path.expanduser(args.base)), "instructions": instructions,
                "samples": args.samples, "seed": args.seed, "prompts": stage_digest({"p": prompts}),
                "max_new_tokens": policy.max_new_tokens, "temperature": policy.temperature, "top_p": policy.top_p}
    pool_path = os.path.join(args.out, f"pool-{stage_digest(settings)}.json")
    t0 = time.time()
    if os.path.exists(pool_path):
        with open(pool_path) as f:
            pool = json.load(f)
        print(f"pool: {len(pool)} completions from {pool_path}")
    else:
        torch.manual_seed(args.seed)
        pool = sample_pool(policy, prompts, instructions, args.samples, args.batch_size)
        with open(pool_path + ".tmp", "w") as f:
            json.dump(pool, f)
        os.replace(pool_path + ".tmp", pool_path)
        print(f"pool: {len(pool)} completions sampled in {time.time() - t0:.0f} s")
    pool.sort(key=lambda r: (r["prompt"], r["instruction"]))
    _, scored = reward([prompts[r["prompt"]] for r in pool], [r["text"] for r in pool])  # [P * n, K]
    n = len(instructions) * args.samples
    rewards = scored.view(len(prompts), n, len(names))  # [P, n, K]
    g = torch.Generator().manual_seed(args.seed)
    weights = two_decimal_weights(len(prompts) * args.weights_per_prompt, len(names), g).float()
    weights = weights.view(len(prompts), args.weights_per_prompt, len(names))  # [P, M, K]
    picked = best_of_pool(rewards, weights, scalarize)  # [P, M]
    examples = [(prompts[p], weights[p, m], pool[p * n + int(picked[p, m])]["ids"])
                for p in range(len(prompts)) for m in range(args.weights_per_prompt)]  # fmt: skip
    by_instruction = {str(instructions[j]): rewards.view(-1, len(instructions), args.samples, len(names))[:, j]
                      .mean((0, 1)).tolist() for j in range(len(instructions))}  # fmt: skip
    for text, mean in by_instruction.items():
        values = ", ".join(f"{k}={v:.3f}" for k, v in zip(names, mean, strict=True))
        print(f"pool mean rewards under {text!r}: {values}")
    losses = distill(policy, examples, args.instructions, args.epochs, args.train_batch_size,
                    args.learning_rate, g)
    policy.save_pretrained(args.out, merge_lora=True)
    report = {**settings, "weights_per_prompt": args.weights_per_prompt, "epochs": args.epochs,
              "learning_rate": args.learning_rate, "train_batch_size": args.train_batch_size, "losses": losses,
              "pool_mean_rewards": by_instruction, "seconds": round(time.time() - t0, 1)}  # fmt: skip
    with open(os.path.join(args.out, "preference_stage.json"), "w") as f:
        json.dump(report, f, indent=2)
    print(f"wrote {args.out} in {report['seconds']:.0f} s")
    return report


DEFAULT_OUT = "~/.cache/pareto_lightning/smollm2-135m-preference"
"""Where the stage writes by default; the ``recipes/smollm2`` recipes name this folder."""


def main(argv: Sequence[str] | None = None) -> dict:
    """Command line: ``python -m pareto_lightning.models.preference_stage [--recipe ...] [--out ...]``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipe", default="recipes/smollm2/weighted_meta.yaml",
                        help="the recipe whose policy settings, reward, scalarization and prompts the stage uses")
    parser.add_argument("--base", default="~/.cache/pareto_lightning/smollm2-135m-instruct",
                        help="the pretrained model folder (python -m pareto_lightning.models.smollm2 writes it)")
    parser.add_argument("--out", default=DEFAULT_OUT, help="the folder to write (a normal model folder)")
    parser.add_argument("--instructions", nargs="+", default=list(DEFAULT_INSTRUCTIONS),
                        help="one style instruction per objective, in the order of the recipe's objective_names")
    parser.add_argument("--samples", type=int, default=2, help="completions per prompt and instruction")
    parser.add_argument("--weights-per-prompt", type=int, default=4, help="preferences drawn per prompt")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--train-batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--batch-size", type=int, default=32, help="prompts per generation call")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.out = os.path.expanduser(args.out)
    return run_stage(args)


if __name__ == "__main__":
    main()


__all__ = ["DEFAULT_INSTRUCTIONS", "best_of_pool", "distill", "instruction_prompt", "run_stage", "sample_pool"]
