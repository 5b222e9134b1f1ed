"""What an algorithm module keeps in its checkpoints besides the weights, and when resuming one is refused."""

from __future__ import annotations

from typing import Any

from lightning.pytorch.utilities.rank_zero import rank_zero_warn

from pareto_lightning.algorithms.guard import GradientGuard
from pareto_lightning.algorithms.reuse import RolloutReuse
from pareto_lightning.checkpointing import (
    RUN_SIGNATURE_KEY,
    other_setup_warning,
    resume_error,
    resume_problems,
    run_signature,
)
from pareto_lightning.policy import PreferencePolicy
from pareto_lightning.scalarization import Scalarizer


class ResumableRun:
    """Mixin of :class:`~pareto_lightning.algorithms.base.PreferenceAlignmentModule`: its checkpoint hooks.

    A checkpoint records the run's signature (:func:`~pareto_lightning.checkpointing.run_signature`), the training
    seed, the rollouts kept for later iterations and the gradient guard's count. Resuming training from a
    checkpoint of another setup, or one already at ``trainer.max_steps``, is refused; evaluating it is allowed,
    with a warning.
    """

    policy: PreferencePolicy
    scalarizer: Scalarizer
    train_seed: int | None
    rollout_reuse: RolloutReuse
    grad_guard: GradientGuard
    checkpoint_step: int | None
    _trainer: Any
    trainer: Any

    def run_signature(self) -> dict[str, Any]:
        """What a run resuming this module's checkpoint must share."""
        callbacks = self._trainer.callbacks if self._trainer is not None else []
        return run_signature(type(self).__name__, self.scalarizer, self.policy.objective_names, callbacks)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[RUN_SIGNATURE_KEY] = self.run_signature()
        checkpoint["pareto_lightning_train_seed"] = self.train_seed
        checkpoint["pareto_lightning_rollouts"] = self.rollout_reuse.state_dict()
        checkpoint["pareto_lightning_grad_guard"] = self.grad_guard.state_dict()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.checkpoint_step = int(checkpoint.get("global_step", 0))
        if checkpoint.get("pareto_lightning_train_seed") is not None:
            self.train_seed = int(checkpoint["pareto_lightning_train_seed"])
        self.rollout_reuse.load_state_dict(checkpoint.get("pareto_lightning_rollouts", {}))
        self.grad_guard.load_state_dict(checkpoint.get("pareto_lightning_grad_guard", {}))
        if self._trainer is None:
            return
        problems = resume_problems(checkpoint.get(RUN_SIGNATURE_KEY), self.run_signature())
        # Only resuming training is refused: evaluating a checkpoint under another recipe is legitimate.
        if self.trainer.state.fn != "fit":
            if problems:
                rank_zero_warn(other_setup_warning(problems))
            return
        error = resume_error(problems, self.trainer.max_steps, self.checkpoint_step)
        if error:
            raise ValueError(error)


__all__ = ["ResumableRun"]
