"""``GradientGuard``: no non-finite gradient ever reaches the weights."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Literal

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
            problems.append(f"`model.init_args.grad_nan_policy` must be 'raise' or 'skip_step'; got {policy!r}.")
        if isinstance(max_skipped_steps, bool) or not isinstance(max_skipped_steps, int) or max_skipped_steps < 0:
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


__all__ = ["GradNaNPolicy", "GradientGuard"]
