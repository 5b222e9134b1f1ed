"""An algorithm module's loss: the one given as ``model.init_args.loss``, or its default built from the module's own
hyperparameter arguments (``model.init_args.beta``, ``epsilon``, ...), which recipes set directly."""

from __future__ import annotations

import inspect
from typing import Any, TypeVar

from pareto_lightning.config_errors import configuration_error
from pareto_lightning.losses.modules import AlignmentLoss

LossT = TypeVar("LossT", bound=AlignmentLoss)


def module_loss(owner: str, given: LossT | None, default: type[LossT], arguments: dict[str, Any]) -> LossT:
    """``given``, or ``default(**arguments)`` when the module was given no loss.

    The module's arguments are checked first (:meth:`AlignmentLoss.problems`, quoted as ``model.init_args.<name>``)
    by the module. A loss given together with an argument set away from its default would hold the value twice:
    that is refused.

    Raises:
        ValueError: both ``model.init_args.loss`` and ``model.init_args.<name>`` set ``<name>``.
    """
    if given is None:
        return default(**arguments)
    defaults = inspect.signature(default).parameters
    twice = [name for name, value in arguments.items() if value != defaults[name].default]
    if twice:
        raise configuration_error(
            owner,
            [
                f"`model.init_args.{name}` and `model.init_args.loss` both set the loss's `{name}`: set it once, "
                f"as `model.init_args.loss.init_args.{name}`."
                for name in twice
            ],
        )
    return given


__all__ = ["module_loss"]
