"""``CrashCheckpoint``: a run that fails keeps its work, and resumes as if it had never failed."""

from __future__ import annotations

import os
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback

from pareto_lightning.data.contract import preference_data


class CrashCheckpoint(Callback):
    """Save ``<dirpath>/<filename>.ckpt`` when training raises, ready for ``--ckpt_path``.

    Like Lightning's ``OnExceptionCheckpoint``, made exact for this library's training loop, and without its
    side effect (with an ``OnExceptionCheckpoint`` Lightning turns every ``fit`` without ``ckpt_path`` into
    ``ckpt_path="last"``, which silently resumes whatever last checkpoint it finds). A step that failed midway
    (a reward model error, NaN rewards, an out-of-memory error) has already drawn its batch, so the data module
    is rewound to draw it again; the weights, optimizer and ``MetaLoop`` state are those after the last
    completed step, and each step's sampling seed depends only on the step (``train_seed``). Resuming therefore
    repeats the failed step and continues to the same weights as a run that never failed. A run that fails
    before its first optimizer step saves nothing. The command line adds it to every ``fit`` that has
    checkpointing on.

    Args:
        dirpath: folder of the checkpoint; None uses the run's ``<log_dir>/checkpoints``.
        filename: checkpoint name without ``.ckpt``.

    Example:
        >>> CrashCheckpoint(filename="failed").filename
        'failed'
    """

    def __init__(self, dirpath: str | None = None, filename: str = "on_exception") -> None:
        if not filename:
            raise ValueError("`CrashCheckpoint.filename` must not be empty.")
        self.dirpath, self.filename = dirpath or ".", filename
        self._auto_dirpath = dirpath is None
        self._in_step = False

    @property
    def ckpt_path(self) -> str:
        return os.path.join(self.dirpath, self.filename + ".ckpt")

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self._auto_dirpath:
            self.dirpath = os.path.join(trainer.log_dir or trainer.default_root_dir, "checkpoints")

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        self._in_step = True

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        self._in_step = False

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        if trainer.global_step == 0:  # nothing trained yet (e.g. a setup check failed): nothing to keep
            return
        data = preference_data(trainer)
        if self._in_step and data is not None:
            data.rewind_last_batch()
        trainer.save_checkpoint(self.ckpt_path)
        # Said after the traceback's cause, so the user knows the work is kept and how to continue.
        if trainer.is_global_zero:
            print(f"Training failed at step {trainer.global_step}; resume with --ckpt_path {self.ckpt_path}")


__all__ = ["CrashCheckpoint"]
