"""A progress bar that counts optimizer steps: this library's training runs have one endless epoch."""

from __future__ import annotations

from lightning.pytorch.callbacks import RichProgressBar


class StepProgressBar(RichProgressBar):
    """Lightning's rich progress bar, labelled ``Training`` instead of ``Epoch 0/-2``.

    Training batches are drawn from an endless stream and runs stop at ``trainer.max_steps``, so Lightning's
    epoch counter (with ``max_epochs = -1``) says nothing; the bar itself shows the steps. The command line uses
    it whenever the progress bar is on and no other one is configured (it needs the ``rich`` package, which
    Lightning's extras bring; without it Lightning's plain bar is used).

    Example:
        >>> StepProgressBar().train_description
        'Training'
    """

    train_description = "Training"

    def _get_train_description(self, current_epoch: int) -> str:
        # Lightning's rich bar builds "Epoch {current}/{max_epochs - 1}" here; the epoch is meaningless for us.
        return f"{self.train_description:{len(self.validation_description)}}"


__all__ = ["StepProgressBar"]
