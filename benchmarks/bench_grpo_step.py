"""Seconds per GRPO step: ``GRPOModule`` under a Lightning ``Trainer`` vs TRL's ``GRPOTrainer`` (target 1.5x).

Both sides train the same tiny Qwen2 (the built-in ``LexiconLM``: hidden 64, 2 layers, 80k parameters,
saved to a temporary folder and loaded from it by both; TRL reloads its reference model from that folder)
on the same preference-conditioned lexicon prompts, with the same settings per step:

* 4 prompts x 4 completions (``num_generations=4``), 16 new tokens each, sampling at temperature 1,
  top-p 1, no top-k;
* the completion length is forced to exactly 16 tokens on both sides with ``min_new_tokens=16`` (the
  end-of-sequence logit is masked until 16 tokens exist) and ``max_new_tokens=16``: TRL through
  ``GRPOConfig.generation_kwargs``, ours through the model's ``generation_config`` (``generate`` reads
  every setting it is not passed from there). The script checks that every completion of both sides
  has 16 tokens and no end-of-sequence token, so both do the same amount of model work;
* the same reward code: the task's ``MultiObjectiveReward`` (two ``LexiconReward`` objectives)
  scalarized by ``SmoothTchebycheff`` under the prompt's preference, wrapped as a TRL reward function;
* GRPO with group-scaled advantages and the per-sequence mean (TRL ``loss_type="grpo"``), one update
  per rollout, AdamW at the same learning rate; ``beta`` 0 (no reference model) and 0.1 (k3 KL to a
  frozen copy of the starting weights).

Ours runs under a real ``lightning.Trainer`` (no logger, checkpointing, progress bar or validation),
timed from ``on_train_batch_start`` to ``on_train_batch_end``; TRL is timed from ``on_step_begin`` to
``on_step_end``. Both windows hold generation, rewards, log-prob forwards, backward and the optimizer
step. The first ``--warmup`` steps of every run are dropped; the runs of the two sides alternate (the
order flips every round) so that a busy spell of the machine hits both alike. Printed: the median
seconds per step of each side (wall clock, and process CPU time, which other processes on a shared
machine disturb less) and the ratio TRL / ours. A second part times the phases of our step.

Run: ``python benchmarks/bench_grpo_step.py`` (about 1.5 minutes on 2 cores; needs ``pip install trl``)
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import statistics
import tempfile
import time
import warnings
from collections import defaultdict
from collections.abc import Callable
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import lightning.pytorch as pl  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402

from pareto_lightning import GRPOModule, PreferencePromptDataModule, SmoothTchebycheff  # noqa: E402
from pareto_lightning.policy import PreferencePolicy  # noqa: E402
from pareto_lightning.tasks import LexiconLM, LexiconPrompts, LexiconTask, LexiconTokenizer  # noqa: E402

NUM_PROMPTS, NUM_GENERATIONS, NEW_TOKENS, LEARNING_RATE = 4, 4, 16, 1e-4


class Clock:
    """Wall and process CPU seconds of each timed window."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def start(self) -> None:
        self._wall, self._cpu = time.perf_counter(), time.process_time()

    def stop(self) -> None:
        self.wall.append(time.perf_counter() - self._wall)
        self.cpu.append(time.process_time() - self._cpu)


class StepTimer(pl.Callback, Clock):
    """Times every Lightning training step (training_step, backward and optimizer step happen inside)."""

    def __init__(self) -> None:
        Clock.__init__(self)

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        self.start()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        self.stop()


def save_model(folder: str) -> None:
    """The shared starting point: a seeded ``LexiconLM`` and its tokenizer in ``folder``."""
    LexiconLM(seed=0).save_pretrained(folder)
    LexiconTokenizer().save_pretrained(folder)
    # TRL rebuilds its reference model from `config.architectures[0]` looked up in transformers;
    # save_pretrained writes the subclass name there, which transformers does not know (the weights
    # are a plain Qwen2).
    path = os.path.join(folder, "config.json")
    with open(path) as f:
        config = json.load(f)
    config["architectures"] = ["Qwen2ForCausalLM"]
    with open(path, "w") as f:
        json.dump(config, f)


def lightning_trainer(steps: int, callbacks: list[pl.Callback]) -> pl.Trainer:
    return pl.Trainer(
        max_steps=steps, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0, num_sanity_val_steps=0,
        callbacks=callbacks,
    )  # fmt: skip


def build_ours(folder: str, beta: float) -> tuple[GRPOModule, PreferencePromptDataModule]:
    task = LexiconTask()
    policy = PreferencePolicy(
        folder,
        objective_names=list(task.objective_names),
        max_new_tokens=NEW_TOKENS,
        temperature=1.0,
        top_p=1.0,
    )
    # generate() takes every setting it is not passed from the model's generation config.
    policy.model.generation_config.min_new_tokens = NEW_TOKENS
    module = GRPOModule(
        policy, task.reward(), SmoothTchebycheff(), num_generations=NUM_GENERATIONS, beta=beta,
        learning_rate=LEARNING_RATE,
    )  # fmt: skip
    data = PreferencePromptDataModule(LexiconPrompts(128), batch_size=NUM_PROMPTS, num_eval_prompts=4)
    return module, data


def record_lengths(policy: PreferencePolicy, lengths: list[int]) -> None:
    """Collect the token count of every completion (-1 for one holding an end of sequence)."""
    generate = policy.generate

    def counted(*args: Any, **kwargs: Any) -> Any:
        rollout = generate(*args, **kwargs)
        ended = (rollout.completion_ids == policy.tokenizer.eos_token_id).any(-1)  # [N]
        lengths.extend(rollout.completion_mask.sum(-1).masked_fill(ended, -1).tolist())
        return rollout

    policy.generate = counted


def run_ours(
    folder: str, beta: float, steps: int, seed: int, wrap: Callable[[GRPOModule], None] | None = None
) -> tuple[Clock, list[int]]:
    """Step times of ``steps`` Lightning steps and the token count of every completion.

    ``wrap`` may patch the module before training (used by local experiments on the step).
    """
    pl.seed_everything(seed, verbose=False)
    module, data = build_ours(folder, beta)
    lengths: list[int] = []
    record_lengths(module.policy, lengths)
    if wrap is not None:
        wrap(module)
    timer = StepTimer()
    lightning_trainer(steps, [timer]).fit(module, data)
    return timer, lengths


def run_trl(folder: str, beta: float, steps: int, seed: int) -> tuple[Clock, list[int]]:
    """Step times of ``steps`` TRL ``GRPOTrainer`` steps and the token count of every completion."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    task = LexiconTask()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(folder)
    # The prompt texts our policy writes (preference line, then the prompt), one preference per prompt.
    writer = PreferencePolicy(model, tokenizer, objective_names=list(task.objective_names))
    data = PreferencePromptDataModule(
        LexiconPrompts(128), batch_size=NUM_PROMPTS, num_eval_prompts=4, seed=seed
    )
    data.setup("fit")
    weights = data.sampler.sample(len(data.train_prompts)).float()  # [P, K]
    dataset = Dataset.from_dict(
        {"prompt": writer.conditioned_prompts(data.train_prompts, weights), "w": weights.tolist()}
    )
    reward, scalarizer = task.reward(), SmoothTchebycheff()
    lengths: list[int] = []

    def utility(
        prompts: list[str],
        completions: list[str],
        w: list[list[float]],
        completion_ids: list[list[int]],
        **_: Any,
    ) -> list[float]:
        lengths.extend(-1 if tokenizer.eos_token_id in ids else len(ids) for ids in completion_ids)
        _, normalized = reward(prompts, completions)  # [N, K]
        return scalarizer(normalized, torch.tensor(w, dtype=normalized.dtype)).tolist()  # [N]

    class TRLStepTimer(TrainerCallback, Clock):
        def __init__(self) -> None:
            Clock.__init__(self)

        def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.start()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.stop()

    timer = TRLStepTimer()
    with tempfile.TemporaryDirectory() as out:
        config = GRPOConfig(
            output_dir=out, per_device_train_batch_size=NUM_PROMPTS * NUM_GENERATIONS,
            num_generations=NUM_GENERATIONS, max_completion_length=NEW_TOKENS,
            generation_kwargs={"min_new_tokens": NEW_TOKENS}, temperature=1.0, top_p=1.0, top_k=0, beta=beta,
            loss_type="grpo", scale_rewards="group", learning_rate=LEARNING_RATE, max_steps=steps,
            logging_steps=10**6, save_strategy="no", report_to="none", use_cpu=True, disable_tqdm=True,
            seed=seed, dataloader_num_workers=0, log_completions=False,
        )  # fmt: skip
        trainer = GRPOTrainer(
            model=model, reward_funcs=utility, args=config, train_dataset=dataset, processing_class=tokenizer,
            callbacks=[timer],
        )  # fmt: skip
        with contextlib.redirect_stdout(io.StringIO()):  # without tqdm the Trainer prints its summary
            trainer.train()
    return timer, lengths


def check_lengths(side: str, lengths: list[int]) -> None:
    if not lengths or set(lengths) != {NEW_TOKENS}:
        raise RuntimeError(f"{side}: completions are not all {NEW_TOKENS} tokens: {sorted(set(lengths))}.")


# -------------------------------------------------------------------------------------- phase breakdown
class PhaseClock:
    """Wall time per phase of our step, by wrapping the module's methods on the instance."""

    def __init__(self) -> None:
        self.total: dict[str, float] = defaultdict(float)

    def wrap(self, owner: Any, name: str, phase: str) -> None:
        inner = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.total[phase] += time.perf_counter() - start

        setattr(owner, name, timed)

    def install(self, module: GRPOModule) -> None:
        self.wrap(module, "training_step", "training_step")
        self.wrap(module.policy, "generate", "generate")
        self.wrap(module.policy.model, "generate", "hf_generate")
        self.wrap(module.reward, "forward", "reward")
        self.wrap(module, "compute_loss", "compute_loss")
        self.wrap(module, "reference_log_probs", "ref_logp")
        self.wrap(module, "sequence_log_probs", "logp_both")
        self.wrap(module, "log", "log")  # log_dict calls self.log once per key
        self.wrap(module, "backward", "backward")
        self.wrap(module, "optimizer_step", "optimizer_step")  # runs the closure: training_step + backward


def breakdown(folder: str, beta: float, steps: int, warmup: int) -> dict[str, float]:
    """Milliseconds per step of each phase of our step, averaged over the steps after the warm-up."""
    clock = PhaseClock()

    class Reset(pl.Callback):
        def on_train_batch_start(self, trainer: pl.Trainer, *args: Any) -> None:
            if trainer.global_step == warmup:
                clock.total.clear()

    pl.seed_everything(0, verbose=False)
    module, data = build_ours(folder, beta)
    clock.install(module)
    timer = StepTimer()
    lightning_trainer(steps, [Reset(), timer]).fit(module, data)
    n = steps - warmup
    t = {k: 1000 * v / n for k, v in clock.total.items()}
    step = 1000 * sum(timer.wall[warmup:]) / n
    rest = t["training_step"] - t["generate"] - t["reward"] - t["compute_loss"] - t["log"]
    return {
        "generate (policy.generate)": t["generate"],
        "  of which model.generate (transformers)": t["hf_generate"],
        "rewards (MultiObjectiveReward)": t["reward"],
        "policy log-prob forward": t["logp_both"] - t.get("ref_logp", 0.0),
        "reference log-prob forward": t.get("ref_logp", 0.0),
        "GRPO loss maths": t["compute_loss"] - t["logp_both"],
        "self.log / log_dict (Lightning)": t["log"],
        "rest of training_step": rest,
        "backward": t["backward"],
        "AdamW update + zero_grad": t["optimizer_step"] - t["training_step"] - t["backward"],
        "Lightning loop and hooks": step - t["optimizer_step"],
        "step total": step,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=40, help="steps per run, warm-up included")
    parser.add_argument("--warmup", type=int, default=5, help="first steps of every run left out")
    parser.add_argument("--rounds", type=int, default=2, help="runs per side and beta (alternated)")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    parser.add_argument("--betas", type=float, nargs="+", default=[0.0, 0.1])
    parser.add_argument("--no-breakdown", action="store_true", help="skip the phase timing of our step")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    transformers.utils.logging.disable_progress_bar()
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "transformers", "trl", "accelerate"):
        logging.getLogger(name).setLevel(logging.ERROR)

    with tempfile.TemporaryDirectory() as folder:
        save_model(folder)
        wall: dict[tuple[str, float], list[float]] = defaultdict(list)
        cpu: dict[tuple[str, float], list[float]] = defaultdict(list)
        for r in range(args.rounds):
            for beta in args.betas:
                for side in ("ours", "TRL") if r % 2 == 0 else ("TRL", "ours"):
                    clock, lengths = (run_ours if side == "ours" else run_trl)(
                        folder, beta, args.steps, seed=r
                    )
                    check_lengths(side, lengths)
                    wall[side, beta] += clock.wall[args.warmup :]
                    cpu[side, beta] += clock.cpu[args.warmup :]
        print(
            f"GRPO step on CPU, torch threads {torch.get_num_threads()}: tiny Qwen2 h64/L2 (80k parameters), "
            f"{NUM_PROMPTS} prompts x {NUM_GENERATIONS} completions x {NEW_TOKENS} tokens (forced on both sides)"
        )
        print(
            f"{args.rounds} runs x {args.steps} steps per side and beta, first {args.warmup} steps of each run "
            "dropped; median seconds per step, wall clock (process CPU time)"
        )
        print(f"{'beta':>5} | {'ours (Lightning)':>19} | {'TRL GRPOTrainer':>19} | {'TRL / ours':>15}")
        for beta in args.betas:
            a, b = statistics.median(wall["ours", beta]), statistics.median(wall["TRL", beta])
            ca, cb = statistics.median(cpu["ours", beta]), statistics.median(cpu["TRL", beta])
            print(
                f"{beta:>5} | {a:>8.4f} ({ca:.4f}) | {b:>8.4f} ({cb:.4f}) | {b / a:>5.2f}x ({cb / ca:.2f}x)"
            )

        if not args.no_breakdown:
            for beta in args.betas:
                parts = breakdown(folder, beta, args.steps, args.warmup)
                n = args.steps - args.warmup
                print(f"\nour step by phase, beta {beta}: ms per step (mean of {n} steps, wall clock)")
                for name, ms in parts.items():
                    print(f"  {name:<42} {ms:7.2f}  {100 * ms / parts['step total']:5.1f}%")


if __name__ == "__main__":
    main()
