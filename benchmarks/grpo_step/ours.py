"""Our side: ``GRPOModule`` trained by a real ``lightning.Trainer``.

The trainer has no logger, checkpointing, progress bar or validation; a step is timed from
``on_train_batch_start`` to ``on_train_batch_end``, a window that holds generation, rewards, log-prob
forwards, backward and the optimizer step. Forced lengths reach ``generate`` through the model's
``generation_config`` (``generate`` takes every setting it is not passed from there).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning.pytorch as pl
import torch

from pareto_lightning import GRPOModule, PreferencePromptDataModule
from pareto_lightning.policy import PreferencePolicy
from pareto_lightning.tasks import LexiconPrompts

from .backends import BACKENDS
from .measure import Clock, SideRun
from .workload import (
    LEARNING_RATE,
    NEW_TOKENS,
    NUM_GENERATIONS,
    NUM_PROMPTS,
    NUM_TRAIN_PROMPTS,
    Cell,
    lora_config,
    utility_function,
)
from .workload import task as lexicon_task


class StepTimer(pl.Callback, Clock):
    """Times every Lightning training step (training_step, backward and optimizer step happen inside)."""

    def __init__(self) -> None:
        Clock.__init__(self)

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        self.start()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        self.stop()


def lightning_trainer(steps: int, callbacks: list[pl.Callback]) -> pl.Trainer:
    """A ``Trainer`` that runs ``steps`` training steps on the CPU and nothing else."""
    return pl.Trainer(
        max_steps=steps, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0, num_sanity_val_steps=0,
        callbacks=callbacks,
    )  # fmt: skip


def build_ours(
    folder: str, cell: Cell, backend: str = "default"
) -> tuple[GRPOModule, PreferencePromptDataModule]:
    """Our module and data module for ``cell``, the model loaded from ``folder``, generating with ``backend``
    (a key of :data:`~.backends.BACKENDS`)."""
    reward, scalarizer = utility_function()
    policy = PreferencePolicy(
        folder,
        objective_names=list(lexicon_task().objective_names),
        max_new_tokens=NEW_TOKENS,
        temperature=1.0,
        top_p=1.0,
        lora=lora_config() if cell.lora else None,
        generation=BACKENDS[backend](),
        logprob_chunk_size=None if backend == "full_logits" else 512,
    )
    policy.model.generation_config.min_new_tokens = NEW_TOKENS if cell.forced else None
    module = GRPOModule(
        policy, reward, scalarizer, num_generations=NUM_GENERATIONS, beta=cell.beta, learning_rate=LEARNING_RATE,
        weight_decay=0.0,
    )  # fmt: skip
    data = PreferencePromptDataModule(
        LexiconPrompts(NUM_TRAIN_PROMPTS), batch_size=NUM_PROMPTS, num_eval_prompts=4
    )
    return module, data


def record_completions(policy: PreferencePolicy, run: SideRun) -> None:
    """Make ``policy.generate`` record each rollout's completion lengths into ``run``."""
    generate = policy.generate

    def counted(*args: Any, **kwargs: Any) -> Any:
        rollout = generate(*args, **kwargs)
        ended = (rollout.completion_ids == policy.tokenizer.eos_token_id) & rollout.completion_mask.bool()
        run.record_completions(rollout.completion_mask.sum(-1).tolist(), int(ended.any(-1).sum()))
        return rollout

    policy.generate = counted


def run_ours(
    folder: str,
    cell: Cell,
    steps: int,
    seed: int,
    callbacks: list[pl.Callback] | None = None,
    prepare: Callable[[GRPOModule], None] | None = None,
    backend: str = "default",
) -> SideRun:
    """Train ``steps`` steps of ``cell`` and return what was measured.

    Args:
        folder: the model folder.
        cell: the setting.
        steps: steps to run, warm-up included.
        seed: ``seed_everything`` seed (sampling, data order).
        callbacks: more callbacks for the trainer (the phase profile adds one).
        prepare: called with the module before training (the phase profile wraps its methods).
        backend: the policy's generation backend, a key of :data:`~.backends.BACKENDS`.
    """
    torch.set_num_threads(cell.threads)
    # Every run compiles its own model afresh: compiled frames of earlier runs' models would count towards
    # torch.compile's recompile limit, past which it falls back to eager code without saying so.
    torch._dynamo.reset()
    pl.seed_everything(seed, verbose=False)
    module, data = build_ours(folder, cell, backend)
    run = SideRun()
    record_completions(module.policy, run)
    if prepare is not None:
        prepare(module)
    timer = StepTimer()
    lightning_trainer(steps, [timer, *(callbacks or [])]).fit(module, data)
    run.wall, run.cpu, run.threads = timer.wall, timer.cpu, torch.get_num_threads()
    return run
