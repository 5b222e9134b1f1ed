"""TRL's side: ``GRPOTrainer`` (TRL 1.16) on the same model, prompts, rewards and settings.

Configured for the same work as ours: ``loss_type="grpo"`` with ``scale_rewards="group"`` (group-scaled
advantages, per-sequence mean), one update per rollout, the same learning rate and no weight decay, the
sampling settings of :func:`~.workload.generation_settings` (forced lengths through ``generation_kwargs``),
and, unlike TRL's defaults, float32 compute (``bf16=False``: the default autocasts to bfloat16 on a CPU),
no gradient checkpointing (the default recomputes activations in the backward pass) and no gradient
clipping (``max_grad_norm=0``), as neither other side does those. The optimizer is TRL's default, the fused
AdamW. The side named ``trl_defaults`` keeps TRL's defaults for those three settings, to show what they cost.

The prompts are our conditioned prompt texts with one preference each, drawn once from our data module;
the reward function is our reward code (``MultiObjectiveReward`` + ``SmoothTchebycheff``) wrapped as a TRL
reward function, which also records the completion lengths. A step is timed from ``on_step_begin`` to
``on_step_end``. With ``beta > 0`` TRL loads its reference model from the model folder; with a LoRA model
(``peft_config``) the reference is the base with the adapter disabled, as on our side.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from typing import Any

import torch

from .measure import Clock, SideRun
from .workload import (
    LEARNING_RATE,
    NEW_TOKENS,
    NUM_GENERATIONS,
    NUM_PROMPTS,
    Cell,
    conditioned_dataset,
    generation_settings,
    lora_config,
    utility_function,
)


def run_trl(folder: str, cell: Cell, steps: int, seed: int, defaults: bool = False) -> SideRun:
    """Train ``steps`` TRL steps of ``cell`` and return what was measured.

    Args:
        folder: the model folder.
        cell: the setting.
        steps: steps to run, warm-up included.
        seed: TRL's seed and the seed of the preferences drawn for the prompts.
        defaults: keep TRL's defaults for mixed precision, gradient checkpointing and clipping.
    """
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    torch.set_num_threads(cell.threads)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(folder)
    prompts, texts, weights = conditioned_dataset(model, tokenizer, seed)
    dataset = Dataset.from_dict({"prompt": texts, "raw_prompt": prompts, "w": weights.tolist()})
    reward, scalarizer = utility_function()
    run = SideRun()
    eos = tokenizer.eos_token_id

    def utility(
        prompts: list[str], completions: list[str], raw_prompt: list[str], w: list[list[float]],
        completion_ids: list[list[int]], **_: Any,
    ) -> list[float]:  # fmt: skip
        run.record_completions(
            [len(ids) for ids in completion_ids], sum(eos in ids for ids in completion_ids)
        )
        _, normalized = reward(raw_prompt, completions)  # [N, K]
        return scalarizer(normalized, torch.tensor(w, dtype=normalized.dtype)).tolist()  # [N]

    class TRLStepTimer(TrainerCallback, Clock):
        def __init__(self) -> None:
            Clock.__init__(self)

        def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.start()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.stop()

    sampling = generation_settings(cell.forced)
    extra = {k: v for k, v in sampling.items() if k not in ("do_sample", "temperature", "top_p", "top_k",
                                                            "max_new_tokens")}  # fmt: skip
    same_work = {} if defaults else {"bf16": False, "gradient_checkpointing": False, "max_grad_norm": 0.0}
    timer = TRLStepTimer()
    with tempfile.TemporaryDirectory() as out:
        config = GRPOConfig(
            output_dir=out, per_device_train_batch_size=NUM_PROMPTS * NUM_GENERATIONS,
            num_generations=NUM_GENERATIONS, max_completion_length=NEW_TOKENS, generation_kwargs=extra or None,
            temperature=sampling["temperature"], top_p=sampling["top_p"], top_k=sampling["top_k"], beta=cell.beta,
            loss_type="grpo", scale_rewards="group", learning_rate=LEARNING_RATE, weight_decay=0.0,
            max_steps=steps, logging_steps=10**6, save_strategy="no", report_to="none", use_cpu=True,
            disable_tqdm=True, seed=seed, dataloader_num_workers=0, log_completions=False, **same_work,
        )  # fmt: skip
        trainer = GRPOTrainer(
            model=model, reward_funcs=utility, args=config, train_dataset=dataset, processing_class=tokenizer,
            callbacks=[timer], peft_config=lora_config() if cell.lora else None,
        )  # fmt: skip
        with contextlib.redirect_stdout(io.StringIO()):  # without tqdm the Trainer prints its summary
            trainer.train()
    run.wall, run.cpu, run.threads = timer.wall, timer.cpu, torch.get_num_threads()
    run.info = {
        "mixed_precision": str(trainer.accelerator.mixed_precision),
        "gradient_checkpointing": bool(getattr(trainer.model, "is_gradient_checkpointing", False)),
        "max_grad_norm": config.max_grad_norm,
        "optim": str(config.optim),
    }
    return run
