"""Recipes that extend a base: ``base: <file>`` in a recipe stacks that file before it, as a ``--config``.

A method's recipe says only what makes it that method; the task, the trainer and the evaluation live in a shared
file that it names as its ``base`` (a path relative to the recipe). Reading the command line, every
``--config recipe.yaml`` whose file names a base becomes ``--config base.yaml --config recipe.yaml``, bases of bases
first. Stacked configs are LightningCLI's own mechanism: later files override earlier ones key by key, and
``callbacks+:`` appends to the base's list. Once expanded, ``base`` is set to null, so a printed or saved config
(``config.yaml`` in the run folder) holds the whole recipe and is not expanded again.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import yaml

__all__ = ["BASE_KEY", "expand_bases"]

BASE_KEY = "base"
"""The recipe key that names the file a recipe extends."""

_CONFIG = "--config"


def expand_bases(args: Sequence[str]) -> list[str]:
    """``args`` with ``--config <base>`` inserted before every ``--config <recipe>`` that names a ``base``.

    Arguments other than ``--config <file>`` pass through unchanged; when a base was inserted, ``--base=null``
    is appended so the parsed config records no base.

    Example:
        >>> import pathlib, tempfile
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (folder / "shared.yaml").write_text("seed_everything: 0\\n")
        >>> _ = (folder / "method.yaml").write_text("base: shared.yaml\\nseed_everything: 1\\n")
        >>> args = expand_bases(["fit", "--config", str(folder / "method.yaml"), "--trainer.max_steps=4"])
        >>> [os.path.basename(a) for a in args]
        ['fit', '--config', 'shared.yaml', '--config', 'method.yaml', '--trainer.max_steps=4', '--base=null']
        >>> expand_bases(["fit", "--config", str(folder / "shared.yaml")])[-1].endswith("shared.yaml")
        True
    """
    out: list[str] = []
    expanded = False
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == _CONFIG and i + 1 < len(args):
            path, i = args[i + 1], i + 2
        elif arg.startswith(_CONFIG + "="):
            path, i = arg[len(_CONFIG) + 1 :], i + 1
        else:
            out.append(arg)
            i += 1
            continue
        chain = _chain(path, ())
        expanded |= len(chain) > 1
        for file in chain:
            out += [_CONFIG, file]
    return [*out, f"--{BASE_KEY}=null"] if expanded else out


def _chain(path: str, seen: tuple[str, ...]) -> list[str]:
    """``path`` preceded by its bases, the outermost first."""
    base = _base_of(path)
    if base is None:
        return [path]
    resolved = os.path.normpath(os.path.join(os.path.dirname(path), base))
    if not os.path.isfile(resolved):
        raise ValueError(
            f"`{BASE_KEY}` in {path} names {base!r}, which is not a file (looked for {resolved})."
        )
    if os.path.abspath(resolved) in seen:
        raise ValueError(
            f"`{BASE_KEY}` in {path} names {base!r}, which is already among its bases (a cycle)."
        )
    return [*_chain(resolved, (*seen, os.path.abspath(path))), path]


def _base_of(path: str) -> str | None:
    """The ``base`` a config file names, or None (also for a config given inline, or not a file)."""
    if not os.path.isfile(path):
        return None  # an inline YAML string, or a missing file: the parser reports it
    with open(path, encoding="utf-8") as fh:
        try:
            config = yaml.safe_load(fh)
        except yaml.YAMLError:
            return None  # the parser reports it with its own message
    base = config.get(BASE_KEY) if isinstance(config, dict) else None
    if base is not None and not isinstance(base, str):
        raise ValueError(f"`{BASE_KEY}` in {path} must be a file path; got {base!r}.")
    return base
