"""Configuration errors the command line reports as one short message: the parser's, and the run folder's.

jsonargparse explains a value that fits none of a key's types with a tree of every alternative it tried, 60 lines
and more for a misspelt ``class_path`` deep in a recipe. :func:`short_parser_message` keeps the key the user
types and the reasons that apply to it.
"""

from __future__ import annotations

import os
import re
import tempfile

_PARSER_KEY = re.compile(r'^Parser key "([^"]+)":?\s*(.*)$')
_CLASS_PATH = re.compile(r"^(?:- )?Problem with given class_path '([^']+)':")
# Lines of the tree that only describe its structure.
_STRUCTURE = ("Does not validate against any of the Union subtypes", "Errors:", "Given value type:")
_NONE_ALTERNATIVE = "Expected a <class 'NoneType'>"
_LONGEST_VALUE = 120


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _trimmed(text: str) -> str:
    text = re.sub(r"\s+", " ", text.strip())
    head, sep, value = text.partition("Got value: ")
    if sep and len(value) > _LONGEST_VALUE:
        text = f"{head}Got value: {value[:_LONGEST_VALUE]}..."
    return text


def short_parser_message(message: str) -> str:
    """The parser's error as one key and its reasons, or ``message`` unchanged when it has no key tree.

    The key is the deepest ``Parser key`` of the tree, joined with the keys and ``class_path`` entries that
    hold it, as a user types it (``data.init_args.eval_weights``); the reasons are the errors listed under it,
    without the ``None`` alternative every optional key offers.

    Example:
        >>> tree = '''Parser key "data":
        ...   Does not validate against any of the Union subtypes
        ...   Subtypes: [<class 'PreferencePromptDataModule'>, <class 'NoneType'>]
        ...   Errors:
        ...     - Problem with given class_path 'pareto_lightning.PreferencePromptDataModule':
        ...         Parser key "eval_weights":
        ...           Does not validate against any of the Union subtypes
        ...           Subtypes: [<class 'str'>, list[list[float]]]
        ...           Errors:
        ...             - Expected a <class 'str'>
        ...             - Expected a <class 'float'>. Got value: a
        ...           Given value type: <class 'list'>
        ...           Given value: [['a', 1]]
        ...     - Expected a <class 'NoneType'>
        ...   Given value type: <class 'jsonargparse._util.NestedArg'>'''
        >>> print(short_parser_message(tree))
        `data.init_args.eval_weights` does not accept [['a', 1]]: Expected a <class 'str'>; Expected a <class \
'float'>. Got value: a (accepted: <class 'str'>, list[list[float]])
        >>> short_parser_message('Unrecognized arguments: --trainer.max_step=3')
        'Unrecognized arguments: --trainer.max_step=3'
    """
    lines = [line.rstrip() for line in message.splitlines() if line.strip()]
    stack: list[tuple[int, str]] = []  # (indent, key part) of the entries holding the current line
    best: tuple[int, int, list[str]] | None = None  # (depth, line index, key parts) of the deepest key
    for i, line in enumerate(lines):
        indent, text = _indent(line), line.strip()
        while stack and stack[-1][0] >= indent:
            stack.pop()
        key = _PARSER_KEY.match(text)
        if key:
            stack.append((indent, key.group(1)))
            parts = [part for _, part in stack]
            if best is None or len(parts) >= best[0]:
                best = (len(parts), i, parts)
        elif _CLASS_PATH.match(text):
            stack.append((indent, "init_args"))
    if best is None:
        return message
    _, start, parts = best
    path = ".".join(parts).replace(".init_args.init_args.", ".init_args.")
    inline = _PARSER_KEY.match(lines[start].strip()).group(2)  # a reason on the key's own line
    reasons, accepted, given = [inline] if inline else [], "", ""
    for line in lines[start + 1 :]:
        if _indent(line) <= _indent(lines[start]):
            break
        text = line.strip().removeprefix("- ")
        if text.startswith("Subtypes:"):
            accepted = text.removeprefix("Subtypes:").strip().removeprefix("[").removesuffix("]")
        elif text.startswith("Given value:"):
            given = text.removeprefix("Given value:").strip()
        elif not text.startswith(_STRUCTURE) and text != _NONE_ALTERNATIVE:
            reasons.append(_trimmed(text))
    head = f"`{path}`" + (f" does not accept {_trimmed(given)}" if given else "")
    tail = f" (accepted: {accepted})" if accepted else ""
    return f"{head}: {'; '.join(reasons) or 'invalid value'}{tail}"


def check_writable_folder(path: str, key: str) -> None:
    """Refuse a folder the run cannot write to (it is created when missing), before any model is built.

    Args:
        path: the folder (``trainer.default_root_dir``, or the current folder when it is unset).
        key: its config key, quoted in the error.

    Example:
        >>> import tempfile, os
        >>> check_writable_folder(tempfile.mkdtemp(), key="trainer.default_root_dir")
        >>> afile = tempfile.NamedTemporaryFile(delete=False).name
        >>> check_writable_folder(os.path.join(afile, "runs"), key="trainer.default_root_dir")
        Traceback (most recent call last):
        ...
        OSError: `trainer.default_root_dir`=.../runs is not a folder this run can write to (...); ...
    """
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as error:
        reason = f"{type(error).__name__}: {error.strerror or error}"
        raise OSError(
            f"`{key}`={path} is not a folder this run can write to ({reason}); "
            "the logs, config.yaml and checkpoints go there: give a writable folder."
        ) from None


def quote_keys(problems: list[str], prefix: str) -> list[str]:
    """Problems in their own terms (argument names in backticks) as the config keys under ``prefix``.

    Example:
        >>> quote_keys(["`beta` must be >= 0; got -1"], "model.init_args")
        ['`model.init_args.beta` must be >= 0; got -1.']
    """
    return [re.sub(r"`(\w+)`", lambda m: f"`{prefix}.{m.group(1)}`", p) + "." for p in problems]


def configuration_error(owner: str, problems: list[str]) -> ValueError:
    """One error listing every problem of ``owner``'s configuration."""
    return ValueError(f"invalid {owner} configuration:\n  " + "\n  ".join(problems))


__all__ = ["check_writable_folder", "configuration_error", "quote_keys", "short_parser_message"]
