"""Two CPU processes (gloo) train with ``MetaLoop`` and save what the test compares.

Usage: ``python _meta_loop_dist_script.py {ddp,fsdp} OUT_DIR`` (Lightning's launcher re-runs it for rank 1).

- ``ddp``: a model whose loss ``(g * theta).sum()`` has gradient ``g = grads[global_step, rank]`` read from
  ``OUT_DIR/grads.pt``; every rank writes its final parameters to ``OUT_DIR/rank<r>.pt``.
- ``fsdp``: ``ModelParallelStrategy`` with ``fully_shard`` (FSDP2) on a small ``nn.Linear`` stack, data
  ``OUT_DIR/data.pt`` picked by (step, rank). Rank 0 writes to ``OUT_DIR/fsdp.pt`` the gathered parameters at
  the start and end of every task, the logged meta metrics, what the parameters and the callback's anchor
  looked like on each rank (DTensor, local shard shapes), and the final parameters of a second run that
  crashed and resumed from a sharded checkpoint saved inside a meta-iteration.
"""

from __future__ import annotations

import os
import sys

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.strategies import ModelParallelStrategy
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from pareto_lightning.callbacks import MetaLoop

INNER, TASKS, ITERATIONS, LR = 2, 2, 3, 0.1
STEPS = INNER * TASKS * ITERATIONS


class KnownGradients(pl.LightningModule):
    def __init__(self, grads: torch.Tensor) -> None:
        super().__init__()
        self.grads = grads  # [STEPS, world, 7]
        self.a = nn.Parameter(torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64))
        self.b = nn.Parameter(torch.tensor([[1.0, 0.0], [-0.5, 0.25]], dtype=torch.float64))

    def training_step(self, batch, batch_idx):
        g = self.grads[self.trainer.global_step, self.global_rank]  # [7]: different data on each rank
        return (g[:3] * self.a).sum() + (g[3:].view(2, 2) * self.b).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=LR)


class ShardedMLP(pl.LightningModule):
    def __init__(self, data: torch.Tensor) -> None:
        super().__init__()
        torch.manual_seed(0)  # the same initial weights on both ranks
        self.net = nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 4)).double()
        self.data = data  # [STEPS, world, 2, 2, 4]: (step, rank, row, x/y, feature)
        self.crash_at: int | None = None

    def configure_model(self) -> None:
        from torch.distributed.fsdp import fully_shard

        mesh = self.device_mesh["data_parallel"]
        for layer in self.net:
            if isinstance(layer, nn.Linear):
                fully_shard(layer, mesh=mesh)
        fully_shard(self.net, mesh=mesh)

    def training_step(self, batch, batch_idx):
        step = self.trainer.global_step
        if step == self.crash_at:
            raise RuntimeError("CRASH")
        # Rows picked by (step, rank), not by the loader: a resumed run restarts its loader at batch 0.
        x, y = self.data[step, self.global_rank].unbind(1)  # [2, 4], [2, 4]
        return ((self.net(x) - y) ** 2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=LR)


class SaveAt(Callback):
    def __init__(self, step: int, path: str) -> None:
        self.step, self.path = step, path

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            trainer.save_checkpoint(self.path)  # sharded: a directory written by every rank


def _full(module: pl.LightningModule) -> dict[str, torch.Tensor]:
    return {n: p.full_tensor().detach().clone() for n, p in module.named_parameters()}  # collective


class GatherBefore(Callback):
    """Runs before MetaLoop: gathered parameters at the start and end of each task (before the restore)."""

    def __init__(self) -> None:
        self.starts: list[dict] = []
        self.adapted: list[dict] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step % INNER == 0:
            self.starts.append(_full(pl_module))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step % INNER == 0:
            self.adapted.append(_full(pl_module))


class InspectAfter(Callback):
    """Runs after MetaLoop: logged meta metrics and the layout of parameters and anchor."""

    def __init__(self, loop: MetaLoop) -> None:
        self.loop, self.logged, self.layout = loop, [], {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == 1:
            self.layout = {
                n: (type(p).__name__, tuple(p.to_local().shape), type(self.loop._anchor[n]).__name__,
                    tuple(self.loop._anchor[n].to_local().shape))
                for n, p in pl_module.named_parameters()
            }  # fmt: skip

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step % (INNER * TASKS) == 0:
            m = trainer.callback_metrics
            self.logged.append({k: float(m[k]) for k in ("meta/lr", "meta/step_norm", "meta/iteration")})


def _meta_loop() -> MetaLoop:
    return MetaLoop(inner_steps=INNER, tasks_per_meta_step=TASKS, meta_lr=1.5, total_meta_steps=ITERATIONS)


def _fit(out: str, strategy, model: pl.LightningModule, callbacks: list, ckpt_path: str | None = None):
    pl.seed_everything(0, verbose=False)
    trainer = pl.Trainer(accelerator="cpu", devices=2, strategy=strategy, max_steps=STEPS, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         callbacks=callbacks, default_root_dir=out)  # fmt: skip
    loader = DataLoader(TensorDataset(torch.zeros(4 * STEPS, 1)), batch_size=1)  # placeholders
    try:
        trainer.fit(model, loader, ckpt_path=ckpt_path)
    except RuntimeError as err:
        if "CRASH" not in str(err):
            raise
    return trainer


def main(mode: str, out: str) -> None:
    if mode == "ddp":
        model = KnownGradients(torch.load(os.path.join(out, "grads.pt"), weights_only=True))
        trainer = _fit(out, "ddp", model, [_meta_loop()])
        params = {n: p.detach().clone() for n, p in model.named_parameters()}
        torch.save(params, os.path.join(out, f"rank{trainer.global_rank}.pt"))
        return
    data = torch.load(os.path.join(out, "data.pt"), weights_only=True)

    def strategy() -> ModelParallelStrategy:
        return ModelParallelStrategy(data_parallel_size=2, tensor_parallel_size=1)

    loop = _meta_loop()
    gather, inspect = GatherBefore(), InspectAfter(loop)
    model = ShardedMLP(data)
    trainer = _fit(out, strategy(), model, [gather, loop, inspect])
    final = _full(model)
    # Crash at step 4 after a checkpoint at step 3 (inside task 2 of meta-iteration 0), then resume from it.
    ckpt = os.path.join(out, "step3.ckpt")
    crashed = ShardedMLP(data)
    crashed.crash_at = 4
    _fit(out, strategy(), crashed, [_meta_loop(), SaveAt(3, ckpt)])
    resumed = ShardedMLP(data)
    _fit(out, strategy(), resumed, [_meta_loop()], ckpt_path=ckpt)
    resumed_final = _full(resumed)
    if trainer.global_rank == 0:
        result = dict(starts=gather.starts, adapted=gather.adapted, final=final, logged=inspect.logged,
                      layout=inspect.layout, resumed_final=resumed_final)  # fmt: skip
        torch.save(result, os.path.join(out, "fsdp.pt"))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
    from pareto_lightning import end_process_group

    end_process_group()  # as `recipes/train.py` does: gloo can abort at exit with the group alive
