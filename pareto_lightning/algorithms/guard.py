"""``GradientGuard``: no non-finite gradient ever reaches the weights."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Literal

from torch import Tensor

from pareto_lightning.finite import LIKELY_CAUSES, NonFiniteError, nonfinite_gradients

GradNaNPolicy = Literal["raise", "skip_step"]


class GradientGuard:
    """Check the gradients before every optimizer step; stop the run or skip the step when one is not finite.

    ``"raise"`` stops at that step, before the optimizer sees the gradients: the weights (and a crash
    checkpoint written now) are those after the last finite step, and the error names the step, the first
    parameters with a non-finite gradient and the likely causes. ``"skip_step"`` clears every gradient instead,
    so the optimizer leaves the weights and its moments as they are (the learning-rate schedule still advances),
    and counts the step; more than ``max_skipped_steps`` such steps in a run fail it.

    Under FSDP2 each process reads its own shards and ``any_rank`` combines the answers, so every rank takes the
    same decision.

    Args:
        policy: ``"raise"`` or ``"skip_step"`` (``model.init_args.grad_nan_policy``).
        max_skipped_steps: the most steps ``"skip_step"`` may skip in a run (``model.init_args.max_skipped_steps``).

    Example:
        >>> import torch
        >>> p = torch.zeros(2, requires_grad=True)
        >>> p.grad = torch.tensor([float("nan"), 0.0])
        >>> guard = GradientGuard("skip_step", max_skipped_steps=3)
        >>> guard.before_step([("w", p)], step=4), guard.skipped, p.grad
        (True, 1, None)
    """

    def __init__(self, policy: GradNaNPolicy = "raise", max_skipped_steps: int = 10) -> None:
        problems = []
        if policy not in ("raise", "skip_step"):
            problems.append(
                f"`model.init_args.grad_nan_policy` must be 'raise' or 'skip_step'; got {policy!r}."
            )
        if (
            isinstance(max_skipped_steps, bool)
            or not isinstance(max_skipped_steps, int)
            or max_skipped_steps < 0
        ):
            problems.append(
                f"`model.init_args.max_skipped_steps` must be an integer >= 0; got {max_skipped_steps!r}."
            )
        if problems:
            raise ValueError("invalid gradient guard configuration:\n  " + "\n  ".join(problems))
        self.policy, self.max_skipped_steps = policy, max_skipped_steps
        self.skipped = 0  # steps skipped so far in this run (kept in checkpoints)

    def before_step(
        self,
        named_parameters: Iterable[tuple[str, Tensor]],
        step: int,
        any_rank: Callable[[bool], bool] = bool,
    ) -> bool:
        """Inspect the gradients of optimizer step ``step`` (0-based ``global_step``); True when it is skipped.

        Raises:
            NonFiniteError: a non-finite gradient under ``"raise"``, or one skip too many under ``"skip_step"``.
        """
        params = list(named_parameters)
        bad = nonfinite_gradients(params)
        if not any_rank(bool(bad)):
            return False
        where = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        where = where or "parameters of another rank"
        if self.policy == "raise":
            raise NonFiniteError(
                f"non-finite gradients (NaN/inf) at step {step}, in {len(bad)} parameter(s) of this rank: {where}. "
                f"The step was not applied: the weights are those after step {step - 1}. {LIKELY_CAUSES}. To skip "
                "such steps instead, set `model.init_args.grad_nan_policy: skip_step`."
            )
        for _, p in params:
            p.grad = None  # the optimizer leaves parameters without a gradient (and their moments) untouched
        self.skipped += 1
        if self.skipped > self.max_skipped_steps:
            raise NonFiniteError(
                f"{self.skipped} optimizer steps had non-finite gradients (the last at step {step}: {where}), more "
                f"than `model.init_args.max_skipped_steps`={self.max_skipped_steps}; the run is not learning. "
                f"{LIKELY_CAUSES}."
            )
        return True

    def state_dict(self) -> dict[str, int]:
        return {"skipped": self.skipped}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.skipped = int(state.get("skipped", 0))


def guard_optimizer_step(
    module: Any, guard: GradientGuard, named_parameters: Iterable[tuple[str, Tensor]]
) -> None:
    """Run ``guard`` before ``module``'s optimizer step (its ``on_before_optimizer_step``): one flag is
    all-reduced over ranks, a skipped step is warned about and counted in ``train/skipped_steps``. Under float16
    loss scaling the gradient scaler skips steps with infinite gradients by design, and the guard stands aside."""
    from lightning.pytorch.plugins.precision import MixedPrecision
    from lightning.pytorch.utilities.rank_zero import rank_zero_warn

    trainer = module._trainer
    plugin = trainer.precision_plugin if trainer is not None else None
    if isinstance(plugin, MixedPrecision) and plugin.scaler is not None:
        return

    def any_rank(bad: bool) -> bool:
        return trainer.strategy.reduce_boolean_decision(bad, all=False) if trainer is not None else bad

    skipped = guard.before_step(named_parameters, module.global_step, any_rank)
    if guard.policy == "skip_step":
        module.log("train/skipped_steps", float(guard.skipped), batch_size=1)
    if skipped:
        rank_zero_warn(
            f"step {module.global_step}: non-finite gradients, the step was skipped ({guard.skipped} of "
            f"at most `model.init_args.max_skipped_steps`={guard.max_skipped_steps})."
        )


__all__ = ["GradNaNPolicy", "GradientGuard", "guard_optimizer_step"]
