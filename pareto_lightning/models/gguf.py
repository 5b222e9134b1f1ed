"""A GGUF checkpoint turned into an ordinary Hugging Face folder (float32), so recipes can name it by path.

``transformers`` reads a GGUF file with ``from_pretrained(folder, gguf_file=name)`` and dequantizes its weights;
that takes tens of seconds and needs the ``gguf`` package every time. Converting once and saving with
``save_pretrained`` gives a folder that loads like any other model, with no ``gguf`` installed.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

GGUF_INSTALL = 'pip install "gguf>=0.10"'
"""The command that installs what ``transformers`` needs to read GGUF files."""


@dataclass(frozen=True)
class ConvertedModel:
    """What :func:`convert_gguf` wrote: the folder, how many parameters, and the seconds loading took."""

    folder: Path
    num_parameters: int
    load_seconds: float


def check_gguf_installed(flag: str = "--gguf") -> None:
    """Raise ``ImportError`` with the pip command when the ``gguf`` package is missing.

    Args:
        flag: the option that asked for a GGUF file, quoted in the message.

    Example:
        >>> import importlib.util
        >>> if importlib.util.find_spec("gguf") is not None:
        ...     check_gguf_installed()
    """
    if importlib.util.find_spec("gguf") is None:
        raise ImportError(
            f"reading a GGUF file ({flag}) needs the `gguf` package, which is not installed; "
            f'run `{GGUF_INSTALL}` (or `pip install -e ".[smollm2]"`) and try again.'
        )


def check_gguf_file(path: str | os.PathLike, flag: str = "--gguf") -> Path:
    """The GGUF file as an absolute ``Path``; ``FileNotFoundError`` naming ``flag`` when it is not a file.

    Example:
        >>> check_gguf_file("/no/such/model.gguf")
        Traceback (most recent call last):
        ...
        FileNotFoundError: `--gguf`: the GGUF file '/no/such/model.gguf' does not exist ...
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(
            f"`{flag}`: the GGUF file {str(path)!r} does not exist (looked for {file.absolute()}); give the path "
            "of a .gguf file, or leave the option out to download the model."
        )
    if file.suffix.lower() != ".gguf":
        raise ValueError(f"`{flag}` must name a .gguf file; got {str(path)!r}.")
    return file.absolute()


def load_gguf(gguf_file: str | os.PathLike, flag: str = "--gguf") -> tuple[Any, Any]:
    """Load the causal LM and tokenizer stored in one GGUF file, dequantized to float32.

    Args:
        gguf_file: path of the ``.gguf`` file.
        flag: the option that named it, quoted in errors.

    Returns:
        ``(model, tokenizer)``; the model in eval mode, without the GGUF quantization entry in its config (it is
        plain float32 now, and a folder saved from it must not ask for ``gguf`` again).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    file = check_gguf_file(gguf_file, flag)
    check_gguf_installed(flag)
    kwargs = {"gguf_file": file.name}
    loaded = AutoModelForCausalLM.from_pretrained(str(file.parent), dtype=torch.float32, **kwargs)
    tokenizer = AutoTokenizer.from_pretrained(str(file.parent), **kwargs)
    return plain_copy(loaded, str(file), flag).eval(), tokenizer


def plain_copy(model: Any, name: str, flag: str = "--gguf") -> Any:
    """The same weights in a model built from its configuration alone: no quantizer attached, so it saves.

    ``transformers`` keeps the GGUF quantizer on a model loaded from GGUF and refuses to ``save_pretrained`` it,
    even when every weight was dequantized; copying the state dict into a fresh model of the same class (strict,
    so any weight still packed in GGUF blocks fails loudly) gives an ordinary float32 model.
    """
    from transformers import AutoModelForCausalLM

    config = copy.deepcopy(model.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    state = model.state_dict()
    packed = sorted(k for k, v in state.items() if not v.is_floating_point())
    if packed:
        raise ValueError(
            f"`{flag}`: {name} loaded with weights still in GGUF blocks ({packed[:3]}...): transformers keeps them "
            "packed when a GGUF kernel is installed; `pip uninstall kernels`, then convert again."
        )
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    plain.generation_config = copy.deepcopy(model.generation_config)
    return plain


def save_folder(model: Any, tokenizer: Any, out: str | os.PathLike, source: dict[str, Any]) -> Path:
    """Save ``model`` (float32) and ``tokenizer`` into ``out`` in one step: a failed write leaves no half folder.

    The files go to a temporary folder next to ``out`` that is renamed when complete; an existing ``out`` is
    replaced. ``source`` is written as ``source.json`` (where the weights came from).

    Example:
        >>> import tempfile
        >>> from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
        >>> from tokenizers import Tokenizer, models
        >>> tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({"<unk>": 0}, "<unk>")))
        >>> cfg = LlamaConfig(vocab_size=4, hidden_size=8, intermediate_size=16, num_hidden_layers=1,
        ...                   num_attention_heads=2, num_key_value_heads=1)
        >>> out = save_folder(LlamaForCausalLM(cfg), tok, tempfile.mkdtemp() + "/m", {"from": "a test"})
        >>> sorted(p.name for p in out.iterdir() if p.suffix == ".json")[:2]
        ['config.json', 'generation_config.json']
    """
    out = Path(out).expanduser().absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; the model folder is an ordinary one
    try:
        model.to(torch.float32).save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / "source.json").write_text(json.dumps(source, indent=2) + "\n")
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return out


def convert_gguf(
    gguf_file: str | os.PathLike,
    out: str | os.PathLike,
    source: dict[str, Any] | None = None,
    flag: str = "--gguf",
) -> ConvertedModel:
    """Load a GGUF file (:func:`load_gguf`) and save it as a float32 Hugging Face folder (:func:`save_folder`)."""
    start = time.perf_counter()
    model, tokenizer = load_gguf(gguf_file, flag)
    seconds = time.perf_counter() - start
    info = {"gguf_file": Path(gguf_file).name, **(source or {})}
    folder = save_folder(model, tokenizer, out, info)
    return ConvertedModel(folder, sum(p.numel() for p in model.parameters()), seconds)
