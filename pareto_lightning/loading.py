"""Where a pretrained model comes from: a Hub id, or a local folder that must exist."""

from __future__ import annotations

import os


def looks_like_local_path(name: str) -> bool:
    """True when ``name`` is written as a filesystem path rather than a Hub id (``org/name`` or ``name``).

    Example:
        >>> [looks_like_local_path(n) for n in ("Qwen/Qwen2-0.5B-Instruct", "gpt2", "./out", "/m/a/b", "~/m")]
        [False, False, True, True, True]
    """
    return name.startswith(("/", "./", "../", "~")) or name.count("/") > 1 or os.path.exists(name)


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
    """
    path = os.path.expanduser(name)
    if looks_like_local_path(name) and not os.path.exists(path):
        raise FileNotFoundError(
            f"`{key}`: the {what} folder {name!r} does not exist (looked for {os.path.abspath(path)}); give an "
            "existing folder written by save_pretrained, or a Hugging Face Hub id such as 'org/name'."
        )
