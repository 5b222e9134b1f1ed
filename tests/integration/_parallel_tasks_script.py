"""MetaLoop's B tasks one after another (one process) or at once (two gloo DDP processes, one task each).

Usage: ``python _parallel_tasks_script.py {sequential,parallel,parallel_first_part,parallel_resume} OUT_DIR``
(Lightning's launcher re-runs it for rank 1). The model's gradient at each step is read from
``OUT_DIR/grads.pt`` by (meta-iteration, task, inner step), so both forms see the same task data; rank 0 writes
the final parameters to ``OUT_DIR/<mode>.pt``.
"""

from __future__ import annotations

import os
import sys

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from pareto_lightning.callbacks import MetaLoop

INNER, TASKS, ITERATIONS, LR = 2, 2, 3, 0.1


class KnownTaskGradients(pl.LightningModule):
    def __init__(self, grads: torch.Tensor, parallel: bool) -> None:
        super().__init__()
        self.grads, self.parallel = grads, parallel  # [ITERATIONS, TASKS, INNER, 3]
        self.theta = nn.Parameter(torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64))

    def training_step(self, batch, batch_idx):
        step = self.trainer.global_step
        per_iteration = INNER if self.parallel else INNER * TASKS
        task = self.global_rank if self.parallel else (step // INNER) % TASKS
        g = self.grads[step // per_iteration, task, step % INNER]  # [3]
        return (g * self.theta).sum()

    def configure_optimizers(self):
        return torch.optim.AdamW([self.theta], lr=LR, weight_decay=0.0)


def main(mode: str, out: str) -> None:
    parallel = mode.startswith("parallel")
    steps = ITERATIONS * INNER * (1 if parallel else TASKS)
    model = KnownTaskGradients(torch.load(os.path.join(out, "grads.pt"), weights_only=True), parallel)
    loop = MetaLoop(
        INNER, TASKS, reset_optimizer_state=True, parallel_tasks=parallel, total_meta_steps=ITERATIONS
    )
    callbacks = [loop]
    if mode == "parallel_first_part":  # stops after two meta-iterations, checkpointing at each boundary
        steps = INNER * 2
        callbacks.append(
            ModelCheckpoint(dirpath=os.path.join(out, "ckpt"), every_n_train_steps=INNER, save_top_k=-1)
        )
    trainer = pl.Trainer(accelerator="cpu", devices=2 if parallel else 1, strategy="ddp" if parallel else "auto",
                         max_steps=steps, callbacks=callbacks, logger=False, enable_progress_bar=False,
                         enable_model_summary=False, enable_checkpointing=mode == "parallel_first_part",
                         default_root_dir=out)  # fmt: skip
    loader = DataLoader(TensorDataset(torch.zeros(64, 1)), batch_size=1)
    ckpt = os.path.join(out, "ckpt", f"epoch=0-step={INNER * 2}.ckpt") if mode == "parallel_resume" else None
    trainer.fit(model, loader, ckpt_path=ckpt)
    gathered = [torch.zeros(3, dtype=torch.float64) for _ in range(trainer.world_size)]
    if parallel:
        torch.distributed.all_gather(gathered, model.theta.detach())
    else:
        gathered = [model.theta.detach()]
    if trainer.is_global_zero:
        torch.save(torch.stack(gathered), os.path.join(out, f"{mode}.pt"))
    if parallel:
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
