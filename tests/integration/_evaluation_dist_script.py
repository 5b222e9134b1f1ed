"""The evaluation sweep in one process or in two CPU processes (gloo, DDP); rank 0 writes its summary.

Usage: ``python _evaluation_dist_script.py {1,2} OUT_DIR`` (Lightning's launcher re-runs it for rank 1).
"""

from __future__ import annotations

import json
import sys

import lightning.pytorch as pl

from pareto_lightning import (
    GRPOModule,
    ListPrompts,
    ParetoEvaluation,
    PreferencePolicy,
    PreferencePromptDataModule,
    SmoothTchebycheff,
)
from pareto_lightning.tasks import LexiconTask, LexiconTokenizer, build_instruct_lm
from pareto_lightning.tasks.instruct import RECIPE_PLAIN_TEMPLATE

PROMPTS = ["write a note about the river", "describe the city", "write about the sea", "explain the garden"]
WEIGHTS = [[1.0, 0.0], [0.8, 0.2], [0.55, 0.45], [0.3, 0.7], [0.0, 1.0]]


def main(devices: int, out: str) -> None:
    task = LexiconTask()
    # A short supervised stage (the same seed on every rank), so that completions hold lexicon words.
    model = build_instruct_lm(steps=150, cache=False, seed=0)
    policy = PreferencePolicy(
        model, LexiconTokenizer(), max_new_tokens=16, plain_prompt_template=RECIPE_PLAIN_TEMPLATE
    )
    module = GRPOModule(policy, task.reward(), SmoothTchebycheff(), num_generations=2)
    dm = PreferencePromptDataModule(ListPrompts(PROMPTS * 2), num_eval_prompts=4, eval_batch_size=3,
                                    eval_prompts=ListPrompts(PROMPTS), eval_weights=WEIGHTS)  # fmt: skip
    evaluation = ParetoEvaluation(task=task)
    trainer = pl.Trainer(accelerator="cpu", devices=devices, strategy="ddp" if devices > 1 else "auto",
                         callbacks=[evaluation], logger=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=out)  # fmt: skip
    trainer.validate(module, dm, verbose=False)
    if trainer.is_global_zero:
        s = evaluation.last_summary
        with open(f"{out}/summary{devices}.json", "w") as fh:
            json.dump({"scalars": s.scalars, "greedy": s.greedy.tolist(), "pu": s.pu.tolist()}, fh)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
    from pareto_lightning import end_process_group

    end_process_group()  # as `recipes/train.py` does: gloo can abort at exit with the group alive
