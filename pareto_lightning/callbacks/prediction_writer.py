"""``JSONLPredictionWriter``: writes ``predict`` sweeps (prompts x preferences) as JSON lines."""

from __future__ import annotations

import json
import os
from typing import Any

from lightning.pytorch.callbacks import BasePredictionWriter


class JSONLPredictionWriter(BasePredictionWriter):
    """Appends one JSON object per (prompt, ``w``) pair: ``prompt``, ``w``, ``completion``, ``rewards``.

    Each rank writes its own file, ``predictions.jsonl`` on rank 0 and ``predictions.rank<r>.jsonl`` elsewhere,
    in ``output_dir`` (default: the trainer's log directory).

    Example:
        >>> JSONLPredictionWriter(output_dir="out").output_dir
        'out'
    """

    def __init__(self, output_dir: str | None = None) -> None:
        super().__init__(write_interval="batch")
        self.output_dir = output_dir
        self.path: str | None = None

    def on_predict_start(self, trainer, pl_module) -> None:
        out = self.output_dir or trainer.log_dir or trainer.default_root_dir
        os.makedirs(out, exist_ok=True)
        name = (
            "predictions.jsonl"
            if trainer.global_rank == 0
            else f"predictions.rank{trainer.global_rank}.jsonl"
        )
        self.path = os.path.join(out, name)
        open(self.path, "w").close()

    def write_on_batch_end(
        self, trainer, pl_module, prediction: Any, batch_indices, batch, batch_idx, dataloader_idx
    ):
        with open(self.path, "a") as fh:
            for row in prediction:
                fh.write(json.dumps(row) + "\n")

    def on_predict_end(self, trainer, pl_module) -> None:
        if trainer.is_global_zero:
            print(f"Predictions written to {os.path.abspath(self.path)}")

__all__ = [
    "JSONLPredictionWriter",
]
