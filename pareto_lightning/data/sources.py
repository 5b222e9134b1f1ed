"""Prompt sources: where the prompt strings come from (a Hugging Face dataset, local files, or a list)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Protocol, runtime_checkable


@runtime_checkable
class PromptSource(Protocol):
    """Anything with ``load() -> list[str]``. The built-in task's ``LexiconPrompts`` is one."""

    def load(self) -> list[str]: ...


_FILE_BUILDERS = {".json": "json", ".jsonl": "json", ".parquet": "parquet", ".csv": "csv"}
_TEXT_FORMATS = (".json", ".jsonl", ".csv")


def check_utf8(path: str, key: str) -> None:
    """Refuse a local text file that is not UTF-8, naming the first bad byte's line (JSON and CSV are read as UTF-8).

    Example:
        >>> import tempfile
        >>> f = tempfile.NamedTemporaryFile(suffix=".jsonl", delete=False)
        >>> _ = f.write(b'{"prompt": "caf\\xe9"}'); f.close()
        >>> check_utf8(f.name, key="data.init_args.eval_prompts.init_args.data_files")
        Traceback (most recent call last):
        ...
        ValueError: `data.init_args.eval_prompts.init_args.data_files`: ... is not UTF-8 text (byte 0xe9 on line 1); ...
    """
    with open(path, "rb") as fh:
        data = fh.read()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise ValueError(
            f"`{key}`: {path} is not UTF-8 text (byte 0x{data[err.start]:02x} on line {line}); re-encode it as "
            "UTF-8 (for example `iconv -f latin1 -t utf-8 old.jsonl > new.jsonl`)."
        ) from None


class HFPrompts:
    """Prompts from a Hugging Face dataset (Hub name or local folder) or local JSON/JSONL/Parquet/CSV files.

    Args:
        path: dataset name (e.g. ``HuggingFaceH4/ultrafeedback_binarized``) or local folder; may be None when
            ``data_files`` is given.
        split: dataset split (the paper: ``train`` / ``train_prefs`` for UltraFeedback, ``30k_test`` for BeaverTails).
        prompt_column: the column holding the prompt text.
        name: dataset configuration name, if any.
        data_files: local file(s); the format follows the extension.
        limit: keep only the first ``limit`` prompts (None: all).
        key: the config key quoted in errors (the data module sets ``data.init_args.eval_prompts`` for its
            evaluation source).

    Example:
        >>> import json, tempfile, os
        >>> d = tempfile.mkdtemp(); f = os.path.join(d, "p.jsonl")
        >>> with open(f, "w") as fh: _ = fh.write(json.dumps({"prompt": "hi"}) + "\\n")
        >>> HFPrompts(data_files=f).load()
        ['hi']
    """

    def __init__(
        self,
        path: str | None = None,
        split: str = "train",
        prompt_column: str = "prompt",
        name: str | None = None,
        data_files: str | Sequence[str] | None = None,
        limit: int | None = None,
        key: str = "data.init_args.train_prompts",
    ) -> None:
        if path is None and data_files is None:
            raise ValueError(f"`{key}` needs `path` (a dataset name or folder) or `data_files`.")
        if limit is not None and limit < 1:
            raise ValueError(f"`{key}.init_args.limit` must be >= 1 or null; got {limit}.")
        self.path, self.split, self.prompt_column, self.name = path, split, prompt_column, name
        self.data_files = [data_files] if isinstance(data_files, str) else data_files
        self.limit, self.key = limit, key

    def _builder(self) -> str:
        if self.path is not None:
            return self.path
        exts = {os.path.splitext(f)[1].lower() for f in self.data_files}
        if len(exts) != 1 or next(iter(exts)) not in _FILE_BUILDERS:
            raise ValueError(
                f"`{self.key}.init_args.data_files` must all be one of {sorted(_FILE_BUILDERS)}; got {self.data_files}."
            )
        return _FILE_BUILDERS[exts.pop()]

    def _error(self, err: Exception) -> OSError:
        where = self.path or self.data_files
        return OSError(
            f"could not load prompts from {where!r} split {self.split!r} (`{self.key}`): the Hugging Face Hub "
            f"must be reachable, or give a local path or `data_files`. Original error: {type(err).__name__}: {err}"
        )

    def check(self) -> None:
        """Fail fast when the source cannot be found: local files and folders must exist, a Hub name must resolve.

        Cheap (no download of the data): the command line calls it before any model is loaded, so a wrong name
        costs seconds, not the minutes of loading a policy and reward models on every GPU. Local files are read
        in full here (they are on disk already), so a missing column or an empty file fails at this point too;
        for a Hub dataset ``load`` checks the rest (split, column, content).

        Example:
            >>> HFPrompts(data_files="/no/such/prompts.jsonl").check()
            Traceback (most recent call last):
            ...
            OSError: could not load prompts from ['/no/such/prompts.jsonl'] split 'train' ...: the Hugging Face Hub ...
        """
        import datasets

        try:  # resolves the data files (inside `path` when given, patterns included) without downloading them
            datasets.load_dataset_builder(self._builder(), self.name, data_files=self.data_files)
        except (FileNotFoundError, ConnectionError, OSError, ValueError) as err:
            raise self._error(err) from err
        if self.path is None or os.path.isdir(self.path):
            self.load()

    def load(self) -> list[str]:
        import datasets

        builder = self._builder()
        for path in self.data_files or []:
            if path.lower().endswith(_TEXT_FORMATS) and os.path.isfile(path):
                check_utf8(path, f"{self.key}.init_args.data_files")
        try:
            ds = datasets.load_dataset(builder, self.name, split=self.split, data_files=self.data_files)
        except StopIteration as err:  # what `datasets` raises, bare, for a local file with no rows
            raise ValueError(f"`{self.key}` yielded no prompts: {self.data_files} has no rows.") from err
        except (FileNotFoundError, ConnectionError, OSError, ValueError) as err:
            raise self._error(err) from err
        if self.prompt_column not in ds.column_names:
            raise ValueError(
                f"`{self.key}.init_args.prompt_column`={self.prompt_column!r} is not a column of "
                f"{self.path or self.data_files}; columns: {ds.column_names}."
            )
        try:
            column = (
                ds[self.prompt_column]
                if self.limit is None
                else ds.select(range(min(self.limit, len(ds))))[self.prompt_column]
            )
            prompts = [str(p) for p in column]  # read here, lazily
        except UnicodeDecodeError as err:  # a file inside a local folder
            raise ValueError(
                f"`{self.key}` holds text that is not UTF-8 ({err}); re-encode its files as UTF-8."
            ) from None
        if not prompts:
            raise ValueError(f"`{self.key}` yielded no prompts (split {self.split!r} is empty).")
        bad = [i for i, p in enumerate(prompts) if not p.strip()]
        if bad:
            raise ValueError(
                f"`{self.key}` has {len(bad)} empty prompts (first at row {bad[0]}); clean the data."
            )
        return prompts


class ListPrompts:
    """Prompts given inline (YAML list), mostly for tests and quick experiments.

    Example:
        >>> ListPrompts(["a", "b"]).load()
        ['a', 'b']
    """

    def __init__(self, prompts: Sequence[str]) -> None:
        if not prompts or any(not str(p).strip() for p in prompts):
            raise ValueError("`ListPrompts.prompts` must be a non-empty list of non-empty strings.")
        self.prompts = [str(p) for p in prompts]

    def load(self) -> list[str]:
        return list(self.prompts)

__all__ = [
    "HFPrompts",
    "ListPrompts",
    "PromptSource",
    "check_utf8",
]
