"""Checkpoint plumbing shared by the algorithm modules."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Collection, Mapping
from functools import partial
from typing import Any

from torch import nn


# Module-level functions bound with functools.partial (torch tags each hook with an attribute, and a module
# holding them must stay picklable); `where` is shared by the three hooks of one call.
def _left_out(where: dict, key: str) -> bool:
    """Whether ``key`` (relative to the module) is one the module keeps out of its checkpoints."""
    return key in where["keys"] or (bool(where["prefix"]) and key.startswith(where["prefix"]))


def _drop(where: dict, module: nn.Module, state_dict: dict, own_prefix: str, local_metadata: dict) -> None:
    for key in [k for k in state_dict if k.startswith(own_prefix) and _left_out(where, k[len(own_prefix) :])]:
        del state_dict[key]


def _remember_prefix(where: dict, module: nn.Module, state_dict: dict, own_prefix: str, *args: Any) -> None:
    where["loading"] = own_prefix  # where the module sits in what is loaded ("module." under DDP)


def _allow_missing(where: dict, module: nn.Module, incompatible_keys: Any) -> None:
    own = where["loading"]
    incompatible_keys.missing_keys[:] = [
        k
        for k in incompatible_keys.missing_keys
        if not (k.startswith(own) and _left_out(where, k[len(own) :]))
    ]


def leave_out_of_checkpoints(module: nn.Module, prefix: str = "", keys: Collection[str] = ()) -> None:
    """Keep the entries under ``prefix``, and the entries named in ``keys``, out of ``module.state_dict()``, and
    let loading go on without them.

    For frozen parts rebuilt from their own files whenever the module is built (the reward models: storing
    them would add their full size, GBs for the paper's GPT-2-large pair, to every checkpoint; the frozen base
    weights under a LoRA adapter). A
    distributed checkpoint (``torch.distributed.checkpoint``, which Lightning's ``ModelParallelStrategy`` writes)
    reads exactly the keys of the live ``state_dict``, so a key the checkpoint lacks fails the load unless the
    live ``state_dict`` lacks it too. ``load_state_dict(strict=True)`` then accepts the module's own entries
    under ``prefix`` as missing (they keep their current values), also through a wrapper such as DDP.

    Example:
        >>> root = nn.Module()
        >>> root.frozen, root.trained = nn.Linear(2, 2), nn.Linear(2, 1)
        >>> leave_out_of_checkpoints(root, "frozen.")
        >>> sorted(root.state_dict())
        ['trained.bias', 'trained.weight']
        >>> root.load_state_dict(root.state_dict(), strict=True)
        <All keys matched successfully>
        >>> leave_out_of_checkpoints(root, keys=["trained.weight"])
        >>> sorted(root.state_dict())
        ['trained.bias']
    """
    where = {"prefix": prefix, "keys": frozenset(keys), "loading": ""}
    module.register_state_dict_post_hook(partial(_drop, where))
    module.register_load_state_dict_pre_hook(partial(_remember_prefix, where))
    module.register_load_state_dict_post_hook(partial(_allow_missing, where))


RUN_SIGNATURE_KEY = "pareto_lightning_run"
"""Where a checkpoint records what a resumed run must share with the run that wrote it."""


def resume_problems(saved: Mapping[str, Any] | None, current: Mapping[str, Any]) -> list[str]:
    """What differs between the run that wrote a checkpoint and the run resuming it.

    A checkpoint of one method resumed under another (another module, scalarizer, meta-learning setting or
    objectives) would train on silently as a different method. Checkpoints without a record (written by other
    code) are accepted as they are.

    Args:
        saved: the record in the checkpoint (``checkpoint[RUN_SIGNATURE_KEY]``), or None.
        current: the resuming run's record, same keys.

    Returns:
        One line per difference (empty when the runs agree).

    Example:
        >>> resume_problems({"module": "GRPOModule", "meta_loop": None},
        ...                 {"module": "MOODPOModule", "meta_loop": None})
        ["module: the checkpoint has 'GRPOModule', this run has 'MOODPOModule'"]
        >>> resume_problems(None, {"module": "GRPOModule"})
        []
    """
    if saved is None:
        return []
    return [
        f"{key}: the checkpoint has {saved.get(key)!r}, this run has {current[key]!r}"
        for key in current
        if saved.get(key) != current[key]
    ]


def leave_frozen_out_of_checkpoints(module: nn.Module, name: str, child: nn.Module) -> None:
    """Keep the frozen parameters and buffers of ``module``'s submodule ``name`` (``child``) out of its checkpoints.

    Under a LoRA adapter the base weights are frozen and rebuilt from the model's own source whenever the module
    is built, so checkpoints hold the adapter (a few MB) rather than the whole model. Tied weights are listed
    under each of their names.

    Example:
        >>> root = nn.Module()
        >>> root.net = nn.Linear(2, 2)
        >>> _ = root.net.weight.requires_grad_(False)
        >>> leave_frozen_out_of_checkpoints(root, "net", root.net)
        >>> sorted(root.state_dict())
        ['net.bias']
    """
    entries = child.state_dict(keep_vars=True).items()
    leave_out_of_checkpoints(module, keys=[f"{name}.{n}" for n, t in entries if not t.requires_grad])


def run_signature(
    module: str, scalarizer: object, objective_names: list[str], callbacks: list[Any]
) -> dict[str, Any]:
    """What a run resuming a checkpoint must share with the run that wrote it (see :func:`resume_problems`):
    the method, its scalarizer, the meta-learning settings and the objectives."""
    from pareto_lightning.callbacks.meta_loop import MetaLoop

    loops = [c.settings for c in callbacks if isinstance(c, MetaLoop)]
    return {
        "module": module,
        "scalarizer": repr(scalarizer),
        "objective_names": list(objective_names),
        "meta_loop": loops[0] if loops else None,
    }


def other_setup_warning(problems: list[str]) -> str:
    """The warning for a checkpoint of another setup that is evaluated (not trained on)."""
    return (
        "the checkpoint was written by another training setup:\n  " + "\n  ".join(problems) + "\nits "
        "weights are evaluated with this config's module, rewards and sweep, and the run's config.yaml "
        "records this config (`model.class_path`, ...), not the checkpoint's."
    )


def resume_error(problems: list[str], max_steps: int, checkpoint_step: int) -> str | None:
    """Why training cannot resume a checkpoint at ``checkpoint_step``, or None.

    Example:
        >>> resume_error([], max_steps=10, checkpoint_step=4) is None
        True
        >>> resume_error([], max_steps=4, checkpoint_step=4).split(":")[0]
        '`trainer.max_steps`=4 but the checkpoint given to `--ckpt_path` is at step 4'
    """
    if 0 < max_steps <= checkpoint_step:
        return (
            f"`trainer.max_steps`={max_steps} but the checkpoint given to `--ckpt_path` is at step "
            f"{checkpoint_step}: resuming would train nothing. Set `trainer.max_steps` above "
            f"{checkpoint_step} to train on, or evaluate it with `validate --ckpt_path`."
        )
    if problems:
        return (
            "`ckpt_path` holds a checkpoint of another training setup; resuming it here would train on as a "
            "different method:\n  " + "\n  ".join(problems) + "\nresume with the config that wrote it "
            "(its config.yaml sits in the run's log folder), or start a new run without `--ckpt_path`."
        )
    return None


_CHECKPOINT_MAGIC = (b"PK\x03\x04", b"\x80")  # torch.save's zip archive; a legacy pickle
_DISTRIBUTED_METADATA = ".metadata"  # what torch.distributed.checkpoint writes into a checkpoint folder
_WHERE = "the runs' checkpoints are in lightning_logs/version_<n>/checkpoints/"


def _checkpoints_under(folder: str, limit: int = 3) -> list[str]:
    found = []
    for root, _, files in sorted(os.walk(folder)):
        found += [os.path.join(root, f) for f in sorted(files) if f.endswith(".ckpt")]
        if len(found) >= limit:
            break
    return found[:limit]


def check_checkpoint_path(path: str | None) -> None:
    """Refuse a ``--ckpt_path`` that is missing or is not a checkpoint, before any model is built or loaded.

    Accepted: Lightning's aliases (``last``, ``best``, ...); a file that ``torch.save`` wrote (a zip archive is
    checked whole: a truncated or corrupt one, which lacks its closing directory, is refused); a distributed
    checkpoint folder (it holds a ``.metadata`` file). Another folder, such as a run's log folder, is refused
    with the checkpoints found inside it.

    Example:
        >>> import tempfile
        >>> notes = tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False); _ = notes.write("hello")
        >>> notes.close(); check_checkpoint_path(notes.name)
        Traceback (most recent call last):
        ...
        ValueError: `--ckpt_path` .../tmp....txt is not a checkpoint ...
        >>> check_checkpoint_path(tempfile.mkdtemp())
        Traceback (most recent call last):
        ...
        ValueError: `--ckpt_path` /tmp/... is a folder, not a checkpoint ...
    """
    if path is None or str(path) in ("last", "best", "hpc", "registry"):
        return
    path = str(path)
    if os.path.isdir(path):
        if os.path.isfile(os.path.join(path, _DISTRIBUTED_METADATA)):
            return
        inside = _checkpoints_under(path)
        raise ValueError(
            f"`--ckpt_path` {path} is a folder, not a checkpoint (nor a distributed checkpoint folder, which holds "
            f"a {_DISTRIBUTED_METADATA} file); "
            + (f"pass a .ckpt file, e.g. {', '.join(inside)}." if inside else f"{_WHERE}.")
        )
    if not os.path.isfile(path):
        raise FileNotFoundError(f"`--ckpt_path` {path} does not exist.")
    with open(path, "rb") as fh:
        head = fh.read(4)
    if not head.startswith(_CHECKPOINT_MAGIC):
        raise ValueError(
            f"`--ckpt_path` {path} is not a checkpoint (a .ckpt file that Lightning or torch.save wrote, or a "
            f"distributed checkpoint folder); {_WHERE}."
        )
    if head.startswith(_CHECKPOINT_MAGIC[0]):
        try:  # reads only the archive's closing directory, which a truncated file has lost
            with zipfile.ZipFile(path) as archive:
                archive.infolist()
        except (zipfile.BadZipFile, OSError) as error:
            raise ValueError(
                f"`--ckpt_path` {path} is a truncated or corrupt checkpoint ({error}); it was probably cut off "
                f"while being written or copied: pass another one (e.g. last.ckpt or an earlier save); {_WHERE}."
            ) from None

__all__ = [
    "RUN_SIGNATURE_KEY",
    "check_checkpoint_path",
    "leave_frozen_out_of_checkpoints",
    "leave_out_of_checkpoints",
    "other_setup_warning",
    "resume_error",
    "resume_problems",
    "run_signature",
]
