"""How a preference vector reaches the policy: written into the prompt as text.

The weights are written with two decimals by default, the precision of the paper's Table 1: a prompt that rounded
``w`` to 0.1 would map the 28 evaluation weights onto 11 distinct prompts and cap the achievable front.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor

from pareto_lightning.renamed import old_names

PREFERENCE_TEMPLATE = "Preference weights: {weights}."
"""The default preference sentence; ``{weights}`` becomes ``name=value`` pairs joined by ``", "``."""

DEFAULT_PLAIN_TEMPLATE = "{preference}\n{prompt}\n"
"""Layout of the prompt text for tokenizers without a chat template (the preference sentence first)."""


def format_preference(weights: Sequence[float] | Tensor, names: Sequence[str], decimals: int = 2) -> str:
    """Write one preference as ``name=value`` pairs.

    Example:
        >>> format_preference([0.7, 0.3], ["helpfulness", "harmlessness"])
        'helpfulness=0.70, harmlessness=0.30'
    """
    values = weights.tolist() if isinstance(weights, Tensor) else list(weights)
    if len(values) != len(names):
        raise ValueError(
            f"a preference has {len(values)} weights but `model.init_args.policy.init_args.objective_names` has "
            f"{len(names)} names."
        )
    return ", ".join(f"{n}={v:.{decimals}f}" for n, v in zip(names, values, strict=True))


def weight_decimals_problem(weights: Tensor, decimals: int, key: str) -> str | None:
    """Why ``decimals`` cannot write ``weights`` exactly, or None when it can.

    A preference written with fewer decimals than it has tells the model another preference than the one its
    rewards are scalarized with (and maps distinct weights onto one prompt). The fix it suggests is the fewest
    decimals (up to 6) that write every weight exactly.

    Args:
        weights: ``[M, K]`` the preferences a run trains or evaluates on.
        decimals: the policy's ``weight_decimals``.
        key: the config key of ``weights``, quoted in the message.

    Example:
        >>> import torch
        >>> weights = torch.tensor([[0.95, 0.05], [0.5, 0.5]], dtype=torch.float64)
        >>> weight_decimals_problem(weights, 2, "data.init_args.eval_weights") is None
        True
        >>> print(weight_decimals_problem(weights, 1, "data.init_args.eval_weights"))
        `model.init_args.policy.init_args.weight_decimals`=1 writes the preference (0.95, 0.05) of ...as
        (0.9, 0.1) (1 of 2 weights change); set it to 2.
    """
    def exact(d: int) -> Tensor:
        scaled = weights.double() * 10**d
        return ((scaled - scaled.round()).abs() <= 1e-7 * 10**d).all(-1)  # [M]; float32 weights pass too

    fits = exact(decimals)
    if bool(fits.all()):
        return None
    first = weights[~fits][0].tolist()
    given = ", ".join(f"{x:g}" for x in first)
    written = ", ".join(f"{x:.{decimals}f}" for x in first)
    needed = next((d for d in range(decimals + 1, 7) if bool(exact(d).all())), None)
    fix = f"set it to {needed}" if needed is not None else (
        "these weights have no short decimal form: use grid or lattice divisions that divide a power of 10"
    )
    return (
        f"`model.init_args.policy.init_args.weight_decimals`={decimals} writes the preference ({given}) of "
        f"`{key}` as ({written}) ({int((~fits).sum())} of {len(fits)} weights change); {fix}."
    )


def conditioned_prompt(
    prompt: str,
    weights: Sequence[float] | Tensor,
    names: Sequence[str],
    tokenizer: object,
    template: str = PREFERENCE_TEMPLATE,
    decimals: int = 2,
    plain_template: str = DEFAULT_PLAIN_TEMPLATE,
) -> str:
    """The full prompt text for one (prompt, preference) pair.

    With a chat template the preference sentence is a system message and the prompt a user message (generation
    prompt appended); without one, ``plain_template`` places the two (fields ``{preference}`` and ``{prompt}``).
    A small model trained from scratch reads ``w`` more easily when it sits right before the completion
    (``"{prompt}\n{preference}\n"``): its distance to every generated token is then the same for all prompts.

    Example:
        >>> class NoChat: chat_template = None
        >>> conditioned_prompt("say hi", [0.25, 0.75], ["a", "b"], NoChat())
        'Preference weights: a=0.25, b=0.75.\\nsay hi\\n'
        >>> conditioned_prompt("say hi", [0.25, 0.75], ["a", "b"], NoChat(), plain_template="{prompt} {preference}")
        'say hi Preference weights: a=0.25, b=0.75.'
    """
    system = template.format(weights=format_preference(weights, names, decimals))
    return chat_prompt(system, prompt, tokenizer, plain_template)


def chat_prompt(
    system: str | None, prompt: str, tokenizer: object, plain_template: str = DEFAULT_PLAIN_TEMPLATE
) -> str:
    """The prompt text for a system line and a user prompt: the one owner of the prompt layout.

    With a chat template, ``system`` is a system message (None: no system message) and ``prompt`` a user
    message, generation prompt appended; without one, ``plain_template`` places the two (None: the prompt alone).

    Example:
        >>> class NoChat: chat_template = None
        >>> chat_prompt("Be brief.", "say hi", NoChat()), chat_prompt(None, "say hi", NoChat())
        ('Be brief.\\nsay hi\\n', 'say hi\\n')
    """
    if getattr(tokenizer, "chat_template", None):
        messages = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": prompt})
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return plain_template.format(preference=system, prompt=prompt) if system else f"{prompt}\n"


def check_prompt_format(expected: Mapping[str, Any] | None, written: Mapping[str, Any], key: str) -> None:
    """Refuse a model trained on another prompt layout than the policy writes.

    A model may declare the layout it was trained to read as ``model.prompt_format`` (the built-in task's
    ``LexiconInstructLM`` does); a policy that wrote ``w`` differently would silently train a model that cannot
    read it.

    Args:
        expected: the model's ``prompt_format`` (None: the model declares none, nothing to check).
        written: the policy's layout, same keys.
        key: the policy's config key (``model.init_args.policy.init_args``).

    Example:
        >>> check_prompt_format({"weight_decimals": 2}, {"weight_decimals": 1}, "model.init_args.policy.init_args")
        Traceback (most recent call last):
        ...
        ValueError: the policy writes its prompts differently from how the model learned to read them:
          `model.init_args.policy.init_args.weight_decimals`=1 but the model was trained on ...=2
        set each pair to the same value.
    """
    problems = [
        f"`{key}.{k}`={written[k]!r} but the model was trained on `{key}.model.init_args.{k}`={v!r}"
        for k, v in (expected or {}).items()
        if k in written and v != written[k]
    ]
    if problems:
        raise ValueError(
            "the policy writes its prompts differently from how the model learned to read them:\n  "
            + "\n  ".join(problems)
            + "\nset each pair to the same value."
        )


__all__ = [
    "DEFAULT_PLAIN_TEMPLATE",
    "PREFERENCE_TEMPLATE",
    "chat_prompt",
    "check_prompt_format",
    "conditioned_prompt",
    "format_preference",
    "weight_decimals_problem",
]

__getattr__ = old_names(__name__)  # the old names of renamed objects (pareto_lightning.renamed)
