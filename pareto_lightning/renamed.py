"""Old public names, kept for one release as deprecated aliases of their new names.

One naming scheme per kind: scalarizers are named after the scalarization they compute, as their functional
forms are (``WeightedSum``/``weighted_sum``, ``Tchebycheff``/``tchebycheff``,
``SmoothTchebycheff``/``smooth_tchebycheff``); metrics after the quantity, without a suffix, as in torchmetrics
(``Hypervolume``, ``PreferenceUtility``); normalizers as ``<rule>Normalizer`` (``MaxNormalizer``,
``ZScoreNormalizer``, ``TanhNormalizer``, ``IdentityNormalizer``). Each module that exports a new name answers its
old name too, through its ``__getattr__ = old_names(__name__)``, with a ``FutureWarning``; so does a ``class_path``
in a recipe or a saved ``config.yaml``.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from typing import Any

__all__ = ["RENAMED", "old_names", "renamed"]

RENAMED: dict[str, tuple[str, ...]] = {
    "LinearScalarization": ("WeightedSum",),
    "linear": ("weighted_sum",),
    "HypervolumeMetric": ("Hypervolume",),
    "MaxScaler": ("MaxNormalizer",),
    "Standardizer": ("ZScoreNormalizer",),
    "TanhSquash": ("TanhNormalizer",),
    # Two modules had a DEFAULT_TEMPLATE with different meanings: each answers with its own new name.
    "DEFAULT_TEMPLATE": ("PREFERENCE_TEMPLATE", "HH_TEMPLATE"),
}
"""Old name -> its new names (the one that the asking module exports answers). The old names go in the release
after 0.1.0."""


def renamed(module: str, name: str) -> Any:
    """The object that the old ``name`` stands for in ``module``, with a ``FutureWarning``.

    Called from a module's ``__getattr__``, so only names the module does not define arrive here. A name that is
    not an old name, or whose new name the module does not export, raises ``AttributeError`` as usual.

    Example:
        >>> import pareto_lightning
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     old = pareto_lightning.LinearScalarization
        >>> old is pareto_lightning.WeightedSum
        True
        >>> print(caught[0].message)
        `pareto_lightning.LinearScalarization` is renamed `pareto_lightning.WeightedSum`; the old name goes in the
        next release.
    """
    namespace = vars(sys.modules[module])
    new = next((n for n in RENAMED.get(name, ()) if n in namespace), None)
    if new is None:
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    warnings.warn(
        f"`{module}.{name}` is renamed `{module}.{new}`; the old name goes in the next release.",
        FutureWarning,
        stacklevel=3,
    )
    return namespace[new]


def old_names(module: str) -> Callable[[str], Any]:
    """The module-level ``__getattr__`` (PEP 562) of ``module``: it answers the old names through :func:`renamed`.

    Example:
        >>> __getattr__ = old_names("pareto_lightning.scalarization")
        >>> with warnings.catch_warnings(record=True):
        ...     warnings.simplefilter("always")
        ...     __getattr__("LinearScalarization").__name__
        'WeightedSum'
    """

    def __getattr__(name: str) -> Any:
        return renamed(module, name)

    return __getattr__
