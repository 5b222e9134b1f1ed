"""Loading pretrained models and tokenizers (policy and reward models alike): a Hub id, or a local folder.

One place for the rules: a local path must exist, the dtype is a floating torch dtype, ``trust_remote_code`` is
passed through (off unless the user turns it on), and a failure names the config key and the fix. It also owns
where cached artifacts live (:func:`cache_root`).
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn
from transformers import AutoTokenizer, PreTrainedTokenizerBase

CACHE_ENV = "PARETO_LIGHTNING_CACHE"
"""The environment variable that moves the cache (:func:`cache_root`)."""

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
"""The dtypes a policy model is loaded in, by the name its config gives."""

_HUB_HINT = (
    "the Hugging Face Hub must be reachable, or give a local path (a folder written by save_pretrained)"
)


def looks_like_local_path(name: str) -> bool:
    """True when ``name`` is written as a filesystem path rather than a Hub id (``org/name`` or ``name``).

    Example:
        >>> [looks_like_local_path(n) for n in ("Qwen/Qwen2-0.5B-Instruct", "gpt2", "./out", "/m/a/b", "~/m")]
        [False, False, True, True, True]
    """
    return name.startswith(("/", "./", "../", "~")) or name.count("/") > 1 or os.path.exists(name)


def cache_root() -> str:
    """Where cached artifacts live: ``$PARETO_LIGHTNING_CACHE``, or ``~/.cache/pareto_lightning`` when it is unset.

    The built-in task's supervised base and the ``recipes/smollm2`` model folders are written below it.

    Example:
        >>> import os
        >>> cache_root() == os.environ.get(CACHE_ENV, os.path.expanduser("~/.cache/pareto_lightning"))
        True
    """
    default = os.path.join(os.path.expanduser("~"), ".cache", "pareto_lightning")
    return os.environ.get(CACHE_ENV) or default


FETCH_COMMANDS = {
    "smollm2-135m-instruct": "python recipes/smollm2/fetch.py --out {path}",
    "smollm2-135m-preference": "python recipes/smollm2/preference_stage.py --out {path}",
}
"""Folders a recipe script writes, by folder name: a missing one is reported with its command."""


def check_pretrained_source(name: str, key: str, what: str) -> None:
    """Refuse a local path that does not exist, before ``from_pretrained`` reports it as a malformed Hub id.

    Args:
        name: the Hub id or local folder given.
        key: the config key that set it, quoted in the error.
        what: what is loaded (``"policy model"``, ``"reward model"``, ...).

    Example:
        >>> check_pretrained_source("/no/such/model", "model.init_args.policy.init_args.model", "policy model")
        Traceback (most recent call last):
        ...
        FileNotFoundError: `model.init_args.policy.init_args.model`: the policy model folder '/no/such/model' ...
        >>> check_pretrained_source("/m/smollm2-135m-instruct", "model.init_args.policy.init_args.model", "policy")
        Traceback (most recent call last):
        ...
        FileNotFoundError: ... write it with `python recipes/smollm2/fetch.py --out /m/smollm2-135m-instruct`...
    """
    path = os.path.expanduser(name)
    if looks_like_local_path(name) and not os.path.exists(path):
        command = FETCH_COMMANDS.get(os.path.basename(os.path.normpath(path)))
        fix = (
            f"write it with `{command.format(path=name)}`"
            if command
            else "give an existing folder written by save_pretrained"
        )
        raise FileNotFoundError(
            f"`{key}`: the {what} folder {name!r} does not exist (looked for {os.path.abspath(path)}); {fix}, "
            "or a Hugging Face Hub id such as 'org/name'."
        )


def resolve_dtype(dtype: str | torch.dtype | None, key: str) -> torch.dtype | None:
    """A floating torch dtype from its name (``"bfloat16"``, ``"torch.float32"``) or itself; None stays None.

    Example:
        >>> resolve_dtype("bfloat16", "k"), resolve_dtype(None, "k")
        (torch.bfloat16, None)
        >>> resolve_dtype("int8", "model.init_args.policy.init_args.dtype")
        Traceback (most recent call last):
        ...
        ValueError: `model.init_args.policy.init_args.dtype` must be a floating torch dtype or its name ...
    """
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    resolved = getattr(torch, str(dtype).removeprefix("torch."), None)
    if not isinstance(resolved, torch.dtype) or not resolved.is_floating_point:
        raise ValueError(
            f"`{key}` must be a floating torch dtype or its name such as 'float32' or 'bfloat16'; got {dtype!r}."
        )
    return resolved


def load_error(what: str, name: str, key: str, err: Exception) -> OSError:
    """One clear message for a model or tokenizer that cannot be loaded (typically: no Hub access)."""
    return OSError(
        f"could not load {what} '{name}' ({key}): {_HUB_HINT}. Original error: {type(err).__name__}: {err}"
    )


def load_pretrained(
    auto_class: Any,
    name: str,
    key: str,
    what: str,
    dtype: torch.dtype | None = None,
    trust_remote_code: bool = False,
    **options: Any,
) -> Any:
    """``auto_class.from_pretrained(name, **options)`` with the checks above and a message that names ``key``.

    ``options`` go to ``from_pretrained`` as they are (for example ``gguf_file``).

    Example:
        >>> from transformers import AutoModelForCausalLM
        >>> load_pretrained(AutoModelForCausalLM, "/no/such", "model.init_args.policy.init_args.model", "policy model")
        Traceback (most recent call last):
        ...
        FileNotFoundError: `model.init_args.policy.init_args.model`: the policy model folder '/no/such' does not ...
    """
    check_pretrained_source(name, key, what)
    if looks_like_local_path(name):
        name = os.path.expanduser(name)  # from_pretrained reads "~/models/x" as a malformed Hub id
    kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code, **options}
    if dtype is not None:
        kwargs["dtype"] = dtype
    try:
        loaded = auto_class.from_pretrained(name, **kwargs)
    except (OSError, ValueError) as err:  # a missing repository raises OSError, an empty folder ValueError
        raise load_error(what, name, key, err) from err
    check_number_embedding(loaded, name, key)
    return loaded


def check_number_embedding(model: Any, name: str, key: str) -> None:
    """Refuse a checkpoint that reads numbers as values (``config.number_embedding``) loaded without that layer.

    A generic class (``Qwen2ForCausalLM`` for a saved ``LexiconLM``) would drop the two number vectors and
    read the weights digit by digit, a model that was never trained.
    """
    config = getattr(model, "config", None)
    if not getattr(config, "number_embedding", False) or not hasattr(model, "get_input_embeddings"):
        return
    if type(model.get_input_embeddings()).__name__ != "NumberEmbedding":
        raise ValueError(
            f"`{key}`: {name!r} was saved with `number_embedding: true` (numbers read as values), which "
            f"{type(model).__name__} does not have; load it with "
            "`pareto_lightning.tasks.LexiconLM.from_pretrained(path)` and pass the model object."
        )


def model_or_load(
    name_or_path: Any,
    auto_class: Any,
    key: str,
    what: str,
    dtype: torch.dtype | None = None,
    trust_remote_code: bool = False,
) -> tuple[Any, str]:
    """A ready model (cast to ``dtype`` when given) or one loaded by :func:`load_pretrained`, and its name.

    Example:
        >>> from transformers import AutoModelForCausalLM
        >>> from pareto_lightning.tasks import LexiconLM
        >>> model, name = model_or_load(LexiconLM(seed=0), AutoModelForCausalLM, "k", "judge model", torch.bfloat16)
        >>> model.dtype
        torch.bfloat16
    """
    if isinstance(name_or_path, nn.Module):
        model = name_or_path if dtype is None else name_or_path.to(dtype)
        return model, str(getattr(name_or_path, "name_or_path", type(name_or_path).__name__))
    name = str(name_or_path)
    return load_pretrained(
        auto_class, name, key, what, dtype=dtype, trust_remote_code=trust_remote_code
    ), name


def load_tokenizer(
    name: str, key: str, trust_remote_code: bool = False, **options: Any
) -> PreTrainedTokenizerBase:
    """``AutoTokenizer.from_pretrained(name, **options)`` with the same checks and message as
    :func:`load_pretrained`."""
    return load_pretrained(
        AutoTokenizer, name, key, "tokenizer", trust_remote_code=trust_remote_code, **options
    )


def enable_activation_checkpointing(model: nn.Module, key: str) -> None:
    """Recompute each decoder layer in the backward pass (non-reentrant: works with LoRA and FSDP2's hooks)."""
    if not getattr(model, "supports_gradient_checkpointing", False):
        raise ValueError(
            f"`{key}` needs a transformers model that supports it; {type(model).__name__} does not."
        )
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


__all__ = [
    "CACHE_ENV",
    "DTYPES",
    "FETCH_COMMANDS",
    "cache_root",
    "check_number_embedding",
    "check_pretrained_source",
    "enable_activation_checkpointing",
    "load_error",
    "load_pretrained",
    "load_tokenizer",
    "looks_like_local_path",
    "model_or_load",
    "resolve_dtype",
]
