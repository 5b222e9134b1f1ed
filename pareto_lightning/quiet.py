"""Console messages that are expected in this library's runs, silenced with the reason for each.

Only these exact messages are filtered; every other warning keeps showing.
"""

from __future__ import annotations

import logging
import warnings

_EXPECTED_WARNINGS = (
    # Frozen reward models and the KL reference are in eval mode on purpose (no dropout in a reward or a
    # reference); Lightning counts them and warns at every fit.
    r"Found \d+ module\(s\) in eval mode at the start of training",
    # Lightning 2.6 calls a torch API that torch >= 2.10 deprecates; nothing a user can change.
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",
)
_EXPECTED_LOGS = (
    # An advertisement for a hosted logger, printed at every run; the runs here log to TensorBoard.
    "Tip: For seamless cloud logging",
    "Tip: For seamless cloud uploads",
)


class _DropExpected(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(text in message for text in _EXPECTED_LOGS)


def silence_expected_messages() -> None:
    """Install the filters (idempotent): called by the command line, callable from user scripts.

    Example:
        >>> silence_expected_messages(); silence_expected_messages()
    """
    for pattern in _EXPECTED_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropExpected) for f in logger.filters):
            logger.addFilter(_DropExpected())


__all__ = [
    "silence_expected_messages",
]
