"""A supervised stage that teaches a pretrained chat model to read the preference line: best-of-pool distillation.

A small instruct model follows a *style instruction* ("answer in very simple words") but ignores numbers such as
``Preference weights: simplicity=0.70, technicality=0.30``: SmolLM2-135M-Instruct writes the same text at every
``w``, and reinforcement learning from there does not find the conditioning in a CPU budget (the built-in task's
from-scratch row collapses for the same reason). The paper starts from a model that already reads its system prompt.
This stage builds one, in three steps, all with the recipe's own components:

1. **Pool.** For every training prompt, sample completions under each style instruction (one per objective, plus
   no instruction), with the policy's generation backend and sampling settings.
2. **Select.** Score the pool with the recipe's ``MultiObjectiveReward``. For each prompt and each of several
   preferences ``w`` (uniform on the simplex, two decimals, some vertices), keep the completion of that prompt's
   pool that maximizes the recipe's scalarization ``S(r, w)``
   (:func:`pareto_lightning.losses.distillation.best_of_pool`).
3. **Distill.** Train the LoRA adapter so that the model prompted with the *numeric* preference line matches, token
   by token on the kept completion, the ``w``-weighted blend of the base model's logits under each objective's
   instruction (:func:`pareto_lightning.losses.distillation.mixture_distillation_loss`). Then merge the adapter
   into the weights.

Step 3 matches whole next-token distributions. Maximum likelihood of the kept tokens alone (tried first, 2 epochs)
moved the log-likelihood of a simple completion between ``w = (1, 0)`` and ``(0, 1)`` by only 0.03 nats per token
relative to a technical one, and greedy decoding still ignored ``w``.

The result is a normal model folder; the ``recipes/smollm2`` recipes start from it, and its reference policy is
this folder (adapter disabled), as a recipe's reference is its supervised model::

    python recipes/smollm2/fetch.py
    python recipes/smollm2/preference_stage.py --recipe recipes/smollm2/weighted_meta.yaml

Both write under the cache root (``$PARETO_LIGHTNING_CACHE``, default ``~/.cache/pareto_lightning``). The recipes
read ``~/.cache/pareto_lightning/smollm2-135m-preference``; for any other ``--out`` pass
``--model.init_args.policy.init_args.model=DIR`` to them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
import warnings
from collections.abc import Callable, Sequence

import torch
from torch import Tensor
from transformers import LogitsProcessorList

from pareto_lightning import PreferencePolicy, Rollout
from pareto_lightning.algorithms import PreferenceAlignmentModule
from pareto_lightning.cli import ParetoCLI, short_errors
from pareto_lightning.conditioning import chat_prompt
from pareto_lightning.data import PreferencePromptDataModule
from pareto_lightning.generation import SamplingSettings
from pareto_lightning.loading import cache_root, check_pretrained_source
from pareto_lightning.losses.distillation import best_of_pool, mixture_distillation_loss
from pareto_lightning.rollout import completion_mask
from pareto_lightning.tasks.instruct import two_decimal_weights

COMMAND = "python recipes/smollm2/preference_stage.py"
DEFAULT_INSTRUCTIONS = (
    "Answer in very simple, short words, like talking to a small child.",
    "Answer in precise, technical detail, using the proper scientific terms.",
)
"""One style instruction per objective of the ``recipes/smollm2`` recipes (simplicity, technicality)."""


def default_base() -> str:
    """``<cache root>/smollm2-135m-instruct``, the folder ``recipes/smollm2/fetch.py`` writes."""
    return os.path.join(cache_root(), "smollm2-135m-instruct")


def default_out() -> str:
    """``<cache root>/smollm2-135m-preference``, the folder the recipes name (with the default cache root)."""
    return os.path.join(cache_root(), "smollm2-135m-preference")


@torch.no_grad()
def sample_pool(
    policy: PreferencePolicy,
    prompts: Sequence[str],
    instructions: Sequence[str | None],
    samples: int,
    batch_size: int = 32,
) -> list[dict]:
    """``samples`` completions per prompt and instruction, with the policy's backend and sampling settings.

    The prompt is written by :func:`~pareto_lightning.conditioning.chat_prompt`, the policy's own layout, with the
    instruction as the system line (None: no system line) in place of the preference sentence.

    Returns one record per completion: ``{"prompt": i, "instruction": j, "ids": [...], "text": ...}`` (the ids stop
    after the first end of sequence).
    """
    tok, model = policy.tokenizer, policy.model
    sampling = SamplingSettings(True, policy.temperature, policy.top_p)
    jobs = [(i, j) for j in range(len(instructions)) for i in range(len(prompts))]
    records: list[dict] = []
    model.eval()
    for start in range(0, len(jobs), batch_size):
        chunk = jobs[start : start + batch_size]
        texts = [chat_prompt(instructions[j], prompts[i], tok) for i, j in chunk]
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        new = policy.generation.generate(model, tok, enc["input_ids"].repeat_interleave(samples, 0),
                                         enc["attention_mask"].repeat_interleave(samples, 0),
                                         max_new_tokens=policy.max_new_tokens, sampling=sampling,
                                         logits_processor=LogitsProcessorList())  # fmt: skip
        mask, ids = completion_mask(new, tok.eos_token_id, tok.pad_token_id)  # [n * samples, T] each
        for row, (m, seq) in enumerate(zip(mask, ids, strict=True)):
            i, j = chunk[row // samples]
            kept = seq[m.bool()].tolist()
            records.append({"prompt": i, "instruction": j, "ids": kept,
                            "text": tok.decode(kept, skip_special_tokens=True)})  # fmt: skip
    return records


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
    :func:`~pareto_lightning.losses.distillation.mixture_distillation_loss` at the policy's temperature.

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
            taught = [chat_prompt(text, p, tok) for text in instructions for p in prompts]  # [K * b]
            enc = tok(taught, return_tensors="pt", padding=True, add_special_tokens=False)
            teacher = Rollout(taught, enc["input_ids"], enc["attention_mask"], ids.repeat(k, 1), mask.repeat(k, 1),
                              [""] * len(taught), weights.repeat(k, 1), 1)  # fmt: skip
            policy.model.eval()
            with torch.no_grad(), policy.model.disable_adapter():
                teachers = policy.completion_logits(teacher).view(
                    k, len(batch), *ids.shape[1:], -1
                )  # [K, b, T, V]
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
    """A short key for a pool's settings (its cache file name)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def recipe_components(recipe: str, base: str, seed: int) -> tuple:
    """The recipe's policy (loaded from ``base``), reward, scalarizer and training prompts, built by its CLI."""
    check_pretrained_source(base, "--base", "pretrained model")
    if not os.path.isfile(recipe):
        raise FileNotFoundError(
            f"`--recipe`: no file {recipe!r} (run from the repository root, or give its path)."
        )
    args = ["--config", recipe, f"--model.init_args.policy.init_args.model={base}", "--trainer.logger=false",
            f"--seed_everything={seed}"]  # fmt: skip
    with short_errors(), warnings.catch_warnings():
        # The CLI parses `args` only; Lightning warns whenever this script's own flags are on the command line too.
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
        cli = ParetoCLI(PreferenceAlignmentModule, PreferencePromptDataModule, subclass_mode_model=True,
                        subclass_mode_data=True, run=False, args=args)  # fmt: skip
    module, data = cli.model, cli.datamodule
    data.setup("fit")
    return module.policy, module.reward, module.scalarizer, list(data.train_prompts)


def run_stage(args: argparse.Namespace) -> dict:
    """Pool, select, distill and save (see the module docstring); returns what it measured."""
    policy, reward, scalarize, prompts = recipe_components(args.recipe, args.base, args.seed)
    names = list(policy.objective_names)
    instructions = [*args.instructions, None]
    if len(args.instructions) != len(names):
        raise ValueError(
            f"`--instructions` needs one instruction per objective {names}; got {len(args.instructions)}."
        )
    os.makedirs(args.out, exist_ok=True)
    settings = {
        "base": os.path.abspath(os.path.expanduser(args.base)),
        "instructions": instructions,
        "samples": args.samples,
        "seed": args.seed,
        "prompts": stage_digest({"p": prompts}),
        "max_new_tokens": policy.max_new_tokens,
        "temperature": policy.temperature,
        "top_p": policy.top_p,
    }
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
    losses = distill(
        policy, examples, args.instructions, args.epochs, args.train_batch_size, args.learning_rate, g
    )
    policy.save_pretrained(args.out, merge_lora=True)
    report = {**settings, "weights_per_prompt": args.weights_per_prompt, "epochs": args.epochs,
              "learning_rate": args.learning_rate, "train_batch_size": args.train_batch_size, "losses": losses,
              "pool_mean_rewards": by_instruction, "seconds": round(time.time() - t0, 1)}  # fmt: skip
    with open(os.path.join(args.out, "preference_stage.json"), "w") as f:
        json.dump(report, f, indent=2)
    print(f"wrote {args.out} in {report['seconds']:.0f} s")
    return report


def main(argv: Sequence[str] | None = None) -> dict:
    """Command line: ``python recipes/smollm2/preference_stage.py [--recipe ...] [--base ...] [--out ...]``."""
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n")[0])
    parser.add_argument(
        "--recipe",
        default="recipes/smollm2/weighted_meta.yaml",
        help="the recipe whose policy settings, reward, scalarization and prompts the stage uses",
    )
    parser.add_argument("--base", default=None,
                        help=f"the pretrained model folder (default {default_base()}, which "
                             "recipes/smollm2/fetch.py writes)")  # fmt: skip
    parser.add_argument("--out", default=None, help=f"the folder to write (default {default_out()})")
    parser.add_argument(
        "--instructions",
        nargs="+",
        default=list(DEFAULT_INSTRUCTIONS),
        help="one style instruction per objective, in the order of the recipe's objective_names",
    )
    parser.add_argument("--samples", type=int, default=2, help="completions per prompt and instruction")
    parser.add_argument("--weights-per-prompt", type=int, default=4, help="preferences drawn per prompt")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--train-batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--batch-size", type=int, default=32, help="prompts per generation call")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.base = args.base if args.base is not None else default_base()
    args.out = os.path.expanduser(args.out if args.out is not None else default_out())
    return run_stage(args)


if __name__ == "__main__":
    main()
