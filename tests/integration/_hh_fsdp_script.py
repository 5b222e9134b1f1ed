"""``recipes/hh/weighted_meta.yaml`` as two CPU "nodes" of one process each (gloo), FSDP2, on tiny local artifacts.

Usage: start one process per rank, as ``torchrun`` or SLURM would on two machines::

    export MASTER_ADDR=127.0.0.1 MASTER_PORT=<port> WORLD_SIZE=2 LOCAL_RANK=0
    NODE_RANK=<0|1> python _hh_fsdp_script.py {train,resume} ARTIFACTS_DIR OUT_DIR

Lightning sees ``LOCAL_RANK`` and does not launch processes itself. The recipe is parsed by ``ParetoCLI`` with
its strategy (``ModelParallelStrategy``), precision, MetaLoop and data settings kept; only the Hub names, the
devices (``num_nodes=2``, one CPU device each, ``data_parallel_size=2``) and the run length are overridden.

- ``train``: 8 optimizer steps (one meta-iteration: 2 tasks x 4 steps) and an evaluation at step 8 on the 28
  Table-1 weights; at step 4 (after the first task, inside the meta-iteration) a sharded checkpoint
  ``OUT_DIR/step4.ckpt`` is saved and the state it holds is written, gathered, to ``OUT_DIR/saved.pt``.
- ``resume``: continues from ``OUT_DIR/step4.ckpt`` to step 8 and evaluates; the restored state as training
  starts goes to ``OUT_DIR/resumed.pt``.

Rank 0 also writes ``OUT_DIR/<mode>_info.json`` (layout of the sharded parameters, validation count, log dir).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback

HERE = Path(__file__).resolve().parent
RECIPE = HERE.parents[1] / "recipes" / "hh" / "weighted_meta.yaml"
MAX_STEPS, SAVE_AT = 8, 4


def _full(t: torch.Tensor) -> torch.Tensor:
    from torch.distributed.tensor import DTensor

    return (t.full_tensor() if isinstance(t, DTensor) else t).detach().cpu().clone()  # collective for DTensor


def _state(trainer, module) -> dict:
    """Everything a resumed run must get back, gathered into whole tensors (collective: every rank calls it)."""
    from pareto_lightning import MetaLoop

    loop = next(c for c in trainer.callbacks if isinstance(c, MetaLoop))
    optimizer = trainer.optimizers[0]
    params = dict(module.policy.named_parameters())
    moments = {n: _full(optimizer.state[p]["exp_avg"]) for n, p in params.items() if p in optimizer.state}
    steps = {float(optimizer.state[p]["step"]) for p in params.values() if p in optimizer.state}
    return {
        "global_step": trainer.global_step,
        "params": {n: _full(p) for n, p in params.items()},
        "exp_avg": moments,
        "adam_steps": sorted(steps),
        "lr": optimizer.param_groups[0]["lr"],
        "meta": loop.state_dict(),
        "data": trainer.datamodule.state_dict(),
        "max_abs": module.reward.normalizer.max_abs.clone(),
    }


class SaveInsideMetaIteration(Callback):
    """Listed after MetaLoop, so the checkpoint holds the state MetaLoop left at the end of the step."""

    def __init__(self, out: Path) -> None:
        self.out = out

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == SAVE_AT:
            trainer.save_checkpoint(self.out / f"step{SAVE_AT}.ckpt")
            state = _state(trainer, pl_module)
            if trainer.is_global_zero:
                torch.save(state, self.out / "saved.pt")


class RecordResumed(Callback):
    """The restored state before the first resumed batch is drawn (drawing it moves the data module on)."""

    def __init__(self, out: Path) -> None:
        self.out = out

    def on_train_start(self, trainer, pl_module) -> None:
        state = _state(trainer, pl_module)
        if trainer.is_global_zero:
            torch.save(state, self.out / "resumed.pt")


class Info(Callback):
    def __init__(self) -> None:
        self.validations, self.layout, self.sharded_dtypes, self.gathered_dtypes = 0, {}, [], []

    def on_train_start(self, trainer, pl_module) -> None:
        from torch.distributed.tensor import DTensor

        from pareto_lightning.sharding import unsharded

        self.layout = {n: [type(p).__name__, list(p.shape), list(p.to_local().shape) if isinstance(p, DTensor)
                           else list(p.shape)] for n, p in pl_module.named_parameters()}  # fmt: skip
        self.sharded_dtypes = sorted({str(p.dtype) for p in pl_module.policy.parameters()})
        with unsharded(pl_module.policy.model):  # the weights generation sees (collective)
            self.gathered_dtypes = sorted({str(p.dtype) for p in pl_module.policy.model.parameters()})

    def on_validation_end(self, trainer, pl_module) -> None:
        self.validations += 1


def main(mode: str, artifacts: str, out: str) -> None:
    sys.path.insert(0, str(HERE.parents[1] / "benchmarks"))
    from hh_artifacts import HHArtifacts

    from pareto_lightning import end_process_group
    from pareto_lightning.algorithms import PreferenceAlignmentModule
    from pareto_lightning.cli import ParetoCLI
    from pareto_lightning.data import PreferencePromptDataModule

    out_dir = Path(out)
    args = ["--config", str(RECIPE), *HHArtifacts(Path(artifacts)).overrides(RECIPE),
            "--trainer.accelerator=cpu", "--trainer.devices=1", "--trainer.num_nodes=2",
            "--trainer.strategy.init_args.data_parallel_size=2",
            f"--trainer.max_steps={MAX_STEPS}", f"--trainer.val_check_interval={MAX_STEPS}",
            f"--trainer.default_root_dir={out_dir / mode}", "--trainer.enable_progress_bar=false",
            "--trainer.log_every_n_steps=1",
            "--model.init_args.policy.init_args.max_new_tokens=8", "--data.init_args.num_eval_prompts=2",
            # the memory setting a 7B policy needs (docs/scaling.md), exercised under FSDP2 and across the resume
            "--model.init_args.policy.init_args.activation_checkpointing=true"]  # fmt: skip
    cli = ParetoCLI(PreferenceAlignmentModule, PreferencePromptDataModule, subclass_mode_model=True,
                    subclass_mode_data=True, run=False, args=args)  # fmt: skip
    info = Info()
    recorder = SaveInsideMetaIteration(out_dir) if mode == "train" else RecordResumed(out_dir)
    cli.trainer.callbacks.extend([recorder, info])
    ckpt = str(out_dir / f"step{SAVE_AT}.ckpt") if mode == "resume" else None
    cli.trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=ckpt)
    log_dir = cli.trainer.log_dir  # a collective (broadcast from rank 0): every rank asks
    if cli.trainer.is_global_zero:
        summary = {"strategy": type(cli.trainer.strategy).__name__, "world_size": cli.trainer.world_size,
                   "precision": cli.trainer.precision, "global_step": cli.trainer.global_step,
                   "validations": info.validations, "layout": info.layout, "log_dir": log_dir,
                   "sharded_dtypes": info.sharded_dtypes, "gathered_dtypes": info.gathered_dtypes,
                   "activation_checkpointing": cli.model.policy.model.is_activation_checkpointing}  # fmt: skip
        (out_dir / f"{mode}_info.json").write_text(json.dumps(summary, indent=1))
    end_process_group()  # as `recipes/train.py` does: gloo can abort at exit with the group alive


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if os.environ.get("HH_DUMP_AFTER"):  # a rank stuck in a collective prints where, then exits
        import faulthandler

        faulthandler.dump_traceback_later(int(os.environ["HH_DUMP_AFTER"]), exit=True)
    main(*sys.argv[1:4])
    # Everything is written and the process group is ended. Interpreter teardown still aborted a gloo rank once
    # in CI after that ("terminate called without an active exception", exit code 134); what this script tests
    # is done by then, so it leaves without the teardown.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
