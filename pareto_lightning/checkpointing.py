"""Checkpoint plumbing shared by the algorithm modules."""

from __future__ import annotations

from typing import Any

from torch import nn


def leave_out_of_checkpoints(module: nn.Module, prefix: str) -> None:
    """Keep the entries under ``prefix`` out of ``module.state_dict()``, and let loading go on without them.

    For frozen parts rebuilt from their own files whenever the module is built (the reward models: storing
    them would add their full size, GBs for the paper's GPT-2-large pair, to every checkpoint). A
    distributed checkpoint (``torch.distributed.checkpoint``, which Lightning's ``ModelParallelStrategy`` writes)
    reads exactly the keys of the live ``state_dict``, so a key the checkpoint lacks fails the load unless the
    live ``state_dict`` lacks it too. ``load_state_dict(strict=True)`` then accepts the module's own entries
    under ``prefix`` as missing (they keep their current values).

    Example:
        >>> root = nn.Module()
        >>> root.frozen, root.trained = nn.Linear(2, 2), nn.Linear(2, 1)
        >>> leave_out_of_checkpoints(root, "frozen.")
        >>> sorted(root.state_dict())
        ['trained.bias', 'trained.weight']
        >>> root.load_state_dict(root.state_dict(), strict=True)
        <All keys matched successfully>
    """

    def drop(module: nn.Module, state_dict: dict, own_prefix: str, local_metadata: dict) -> None:
        for key in [k for k in state_dict if k.startswith(own_prefix + prefix)]:
            del state_dict[key]

    def allow_missing(module: nn.Module, incompatible_keys: Any) -> None:
        incompatible_keys.missing_keys[:] = [
            k for k in incompatible_keys.missing_keys if not k.startswith(prefix)
        ]

    module.register_state_dict_post_hook(drop)
    module.register_load_state_dict_post_hook(allow_missing)
