"""The entry points that moved to ``recipes/smollm2/``: found next to the package in a source checkout."""

from __future__ import annotations

import importlib.util
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

RECIPES = Path(__file__).resolve().parents[2] / "recipes" / "smollm2"


def recipe_script(name: str) -> ModuleType:
    """The module of ``recipes/smollm2/<name>.py``, loaded from the checkout this package lives in."""
    path = RECIPES / f"{name}.py"
    if not path.is_file():
        raise FileNotFoundError(
            f"recipes/smollm2/{name}.py is not next to this package (looked for {path}); it ships with the "
            "source repository, not the installed package: run it from a clone."
        )
    key = f"recipes_smollm2_{name}"
    if key not in sys.modules:  # registered before it runs: its dataclasses look their module up there
        spec = importlib.util.spec_from_file_location(key, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]


def run_moved(old: str, name: str, argv: Sequence[str] | None) -> Any:
    """Warn that ``python -m <old>`` moved, then run ``recipes/smollm2/<name>.py``'s ``main(argv)``."""
    warnings.warn(
        f"`python -m {old}` is deprecated and will be removed in the next release; run "
        f"`python recipes/smollm2/{name}.py` instead (same options).",
        DeprecationWarning,
        stacklevel=3,
    )
    return recipe_script(name).main(argv)


__all__ = ["recipe_script", "run_moved"]
