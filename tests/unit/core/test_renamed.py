"""Old public names still work for one release, as aliases of the new ones, with a FutureWarning."""

import importlib
import os

import pytest

from pareto_lightning import WeightedSum
from pareto_lightning.cli import printed_config
from pareto_lightning.renamed import RENAMED

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
# Every module that exports a renamed object, and the old names it must still answer.
EXPORTS = {
    "pareto_lightning": [
        "LinearScalarization",
        "HypervolumeMetric",
        "MaxScaler",
        "Standardizer",
        "TanhSquash",
    ],
    "pareto_lightning.scalarization": ["LinearScalarization"],
    "pareto_lightning.scalarization.modules": ["LinearScalarization"],
    "pareto_lightning.scalarization.functional": ["linear"],
    "pareto_lightning.metrics": ["HypervolumeMetric"],
    "pareto_lightning.metrics.hypervolume": ["HypervolumeMetric"],
    "pareto_lightning.rewards": ["MaxScaler", "Standardizer", "TanhSquash"],
    "pareto_lightning.rewards.normalizers": ["MaxScaler", "Standardizer", "TanhSquash"],
}


@pytest.mark.parametrize("module_name", sorted(EXPORTS))
def test_each_old_name_is_its_new_object_with_a_warning(module_name):
    module = importlib.import_module(module_name)
    for old in EXPORTS[module_name]:
        assert old not in vars(module)  # an alias, not a second definition
        with pytest.warns(
            FutureWarning, match=f"`{module_name}.{old}` is renamed `{module_name}.{RENAMED[old]}`"
        ):
            assert getattr(module, old) is getattr(module, RENAMED[old])


def test_an_old_name_is_only_answered_where_its_new_name_is_exported():
    metrics = importlib.import_module("pareto_lightning.metrics")
    with pytest.raises(AttributeError, match="has no attribute 'MaxScaler'"):
        _ = metrics.MaxScaler
    with pytest.raises(AttributeError, match="has no attribute 'NoSuchName'"):
        _ = importlib.import_module("pareto_lightning").NoSuchName


def test_a_recipe_with_an_old_class_path_still_reads(tmp_path):
    old = tmp_path / "old.yaml"
    base = os.path.join(ROOT, "recipes", "base", "lexicon.yaml")
    scalarizer = "      class_path: pareto_lightning.LinearScalarization\n"
    old.write_text(f"base: {base}\nmodel:\n  init_args:\n    scalarizer:\n{scalarizer}")
    with pytest.warns(FutureWarning, match="LinearScalarization` is renamed"):
        config = printed_config(["fit", "--config", str(old)])
    class_path = config["model"]["init_args"]["scalarizer"][
        "class_path"
    ]  # kept as typed, built as the new class
    module, _, name = class_path.rpartition(".")
    with pytest.warns(FutureWarning):
        assert getattr(importlib.import_module(module), name) is WeightedSum
