"""Deprecated entry point: the SmolLM2 fetch moved to ``python recipes/smollm2/fetch.py`` (same options).

``python -m pareto_lightning.models.smollm2`` still runs it, with a ``DeprecationWarning``, until the next release.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pareto_lightning.models._moved import run_moved

DEFAULT_DIR = "~/.cache/pareto_lightning/smollm2-135m-instruct"
"""Deprecated: the folder the recipes name; ``recipes/smollm2/fetch.py`` writes under ``cache_root()``."""


def main(argv: Sequence[str] | None = None) -> Any:
    """Warn, then run ``recipes/smollm2/fetch.py``'s ``main(argv)``."""
    return run_moved("pareto_lightning.models.smollm2", "fetch", argv)


if __name__ == "__main__":
    main()


__all__ = ["DEFAULT_DIR", "main"]
