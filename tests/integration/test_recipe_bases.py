"""Recipes compose: ``base: <file>`` stacks a shared file before a method's recipe, as a ``--config``."""

import glob
import os

import pytest
import yaml

from pareto_lightning.cli import printed_config
from pareto_lightning.recipe_bases import expand_bases

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BASES = sorted(glob.glob(os.path.join(ROOT, "recipes", "base", "*.yaml")))
METHOD_FILES = {  # folder -> its base
    "recipes": "base/lexicon.yaml",
    "recipes/hh": "../base/hh.yaml",
    "recipes/smollm2": "../base/smollm2.yaml",
}


def _write(folder, name, config):
    path = folder / name
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_a_base_goes_before_its_recipe_and_bases_of_bases_first(tmp_path):
    (tmp_path / "shared").mkdir()
    _write(tmp_path / "shared", "task.yaml", {"seed_everything": 1})
    _write(tmp_path / "shared", "trainer.yaml", {"base": "task.yaml"})
    method = _write(tmp_path, "method.yaml", {"base": "shared/trainer.yaml"})
    args = expand_bases(["fit", f"--config={method}", "--trainer.max_steps=2"])
    configs = [os.path.relpath(a, tmp_path) for a in args[2:7:2]]
    assert args[:2] == ["fit", "--config"] and configs == ["shared/task.yaml", "shared/trainer.yaml", "method.yaml"]
    assert args[-2:] == ["--trainer.max_steps=2", "--base=null"]


def test_args_without_a_base_pass_through_unchanged(tmp_path):
    plain = _write(tmp_path, "plain.yaml", {"seed_everything": 1})
    args = ["fit", "--config", plain, "--config", "{seed_everything: 2}", "--trainer.max_steps=2"]
    assert expand_bases(args) == args


@pytest.mark.parametrize(
    "base, message",
    [("missing.yaml", "names 'missing.yaml', which is not a file"), (["a.yaml"], "must be a file path")],
)
def test_a_wrong_base_is_refused_naming_the_key_and_the_file(tmp_path, base, message):
    method = _write(tmp_path, "method.yaml", {"base": base})
    with pytest.raises(ValueError, match=message) as error:
        expand_bases(["fit", "--config", method])
    assert str(error.value).startswith(f"`base` in {method}")


def test_a_cycle_of_bases_is_refused(tmp_path):
    _write(tmp_path, "a.yaml", {"base": "b.yaml"})
    b = _write(tmp_path, "b.yaml", {"base": "a.yaml"})
    with pytest.raises(ValueError, match="already among its bases"):
        expand_bases(["fit", "--config", b])


def test_every_method_file_extends_its_folders_base():
    assert [os.path.basename(b) for b in BASES] == ["hh.yaml", "lexicon.yaml", "smollm2.yaml"]
    for path in BASES:  # the scalarizer is the method's choice
        with open(path) as fh:
            assert "scalarizer" not in yaml.safe_load(fh)["model"]["init_args"], path
    for folder, base in METHOD_FILES.items():
        for path in glob.glob(os.path.join(ROOT, folder, "*.yaml")):
            with open(path) as fh:
                assert yaml.safe_load(fh)["base"] == base, path


def test_a_meta_recipe_appends_its_metaloop_to_the_base_callbacks():
    config = printed_config(["fit", "--config", os.path.join(ROOT, "recipes", "weighted_meta.yaml")])
    names = [c["class_path"].rsplit(".", 1)[1] for c in config["trainer"]["callbacks"]]
    assert names == ["ParetoEvaluation", "ModelCheckpoint", "MetaLoop"]
    assert config["model"]["init_args"]["scalarizer"]["class_path"] == "pareto_lightning.SmoothTchebycheff"
    assert config["base"] is None


def test_a_printed_config_runs_again_as_it_is(tmp_path):
    """The printed (and saved) config holds the whole recipe with ``base: null``: read back, it is the same."""
    recipe = os.path.join(ROOT, "recipes", "mo_odpo.yaml")
    config = printed_config(["fit", "--config", recipe])
    assert config["model"]["class_path"] == "pareto_lightning.MOODPOModule"
    saved = _write(tmp_path, "config.yaml", config)
    assert printed_config(["fit", "--config", saved]) == config
