"""Checks made when fitting or evaluating starts: every preference and prompt the run will write fits the policy."""

from __future__ import annotations

from pareto_lightning.conditioning import weight_decimals_problem
from pareto_lightning.data.contract import PreferenceData
from pareto_lightning.policy import PreferencePolicy


def check_data_fits(policy: PreferencePolicy, data: PreferenceData, stage: str) -> None:
    """Refuse preferences the policy would write rounded, and prompts that do not fit its context.

    Every evaluation weight, and every training weight of a grid, is written exactly (``weight_decimals``).
    Every evaluation prompt under every evaluation weight fits, and every training prompt under every training
    weight of a grid, checked now rather than when it is first drawn, hours into training (the data module is
    set up before the algorithm module). On the continuous simplex the training prompts are checked under the
    evaluation weights now, and each again when drawn.

    Raises:
        ValueError: naming the data module's key to change.
    """
    prompts, weights = data.eval_prompts, data.eval_weights
    train, support = data.train_prompts, data.train_support
    decimals = policy.weight_decimals
    problems = [
        weight_decimals_problem(w, decimals, key)
        for w, key in (
            (weights, "data.init_args.eval_weights"),
            (support, "data.init_args.grid_divisions"),
        )
        if w is not None and (stage == "fit" or w is weights)
    ]
    if any(problems):
        raise ValueError(
            "the policy would write preferences rounded, so the model would be told another preference than "
            "it is scored under:\n  " + "\n  ".join(p for p in problems if p)
        )
    if prompts and weights is not None:
        policy.check_prompt_lengths(prompts, weights, key="data.init_args.eval_prompts")
    written = support if support is not None else weights
    if stage == "fit" and train and written is not None:
        unique = list(dict.fromkeys(train))
        policy.check_prompt_lengths(unique, written, key="data.init_args.train_prompts")


__all__ = ["check_data_fits"]
