"""The table sweep of ``table_sweep.py`` validated in one process or two (gloo): ``ddp`` or FSDP2.

Usage: ``python _prompt_steering_dist_script.py {single,ddp,fsdp2} OUT_DIR`` (Lightning's launcher re-runs it for
rank 1); rank 0 writes ``OUT_DIR/<mode>.json`` with the scalars and the per-(prompt, weight) points.
"""

from __future__ import annotations

import json
import sys

import lightning.pytorch as pl
from lightning.pytorch.strategies import ModelParallelStrategy
from table_sweep import PROMPTS, WEIGHTS, TableSweep

from pareto_lightning import ListPrompts, ParetoEvaluation, PreferencePromptDataModule


def main(mode: str, out: str) -> None:
    strategy = {"single": "auto", "ddp": "ddp",
                "fsdp2": ModelParallelStrategy(data_parallel_size=2, tensor_parallel_size=1)}[mode]  # fmt: skip
    # 28 pairs dealt round-robin: rank 0 evaluates prompts 0 and 2, rank 1 prompts 1 and 3, so each rank alone
    # would see half the prompts; the per-prompt states must be summed over ranks.
    dm = PreferencePromptDataModule(ListPrompts(PROMPTS), num_eval_prompts=4, eval_batch_size=3,
                                    eval_prompts=ListPrompts(PROMPTS), eval_weights=WEIGHTS)  # fmt: skip
    evaluation = ParetoEvaluation(yardstick="raw")
    trainer = pl.Trainer(accelerator="cpu", devices=1 if mode == "single" else 2, strategy=strategy,
                         callbacks=[evaluation], logger=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=out)  # fmt: skip
    trainer.validate(TableSweep(), dm, verbose=False)
    if trainer.is_global_zero:
        s = evaluation.last_summary
        with open(f"{out}/{mode}.json", "w") as fh:
            json.dump({"scalars": s.scalars, "prompt_points": s.prompt_points.tolist()}, fh)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
    from pareto_lightning import end_process_group

    end_process_group()  # as `recipes/train.py` does: gloo can abort at exit with the group alive
