"""Old public names still work for one release, as aliases of the new ones, with a FutureWarning."""

import importlib
import os

import pytest

from pareto_lightning import WeightedSum
from pareto_lightning.cli import printed_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
NORMALIZERS = {
    "MaxScaler": "MaxNormalizer",
    "Standardizer": "ZScoreNormalizer",
    "TanhSquash": "TanhNormalizer",
}
# Every module that exports a renamed object: the old names it must still answer, and their new names there.
EXPORTS = {
    "pareto_lightning": {
        "LinearScalarization": "WeightedSum",
        "HypervolumeMetric": "Hypervolume",
        **NORMALIZERS,
    },
    "pareto_lightning.scalarization": {"LinearScalarization": "WeightedSum"},
    "pareto_lightning.scalarization.modules": {"LinearScalarization": "WeightedSum"},
    "pareto_lightning.scalarization.functional": {"linear": "weighted_sum"},
    "pareto_lightning.metrics": {"HypervolumeMetric": "Hypervolume"},
    "pareto_lightning.metrics.hypervolume": {"HypervolumeMetric": "Hypervolume"},
    "pareto_lightning.rewards": {**NORMALIZERS, "DEFAULT_TEMPLATE": "HH_TEMPLATE"},
    "pareto_lightning.rewards.normalizers": NORMALIZERS,
    "pareto_lightning.rewards.hf_reward_model": {"DEFAULT_TEMPLATE": "HH_TEMPLATE"},
    "pareto_lightning.conditioning": {"DEFAULT_TEMPLATE": "PREFERENCE_TEMPLATE"},
}


@pytest.mark.parametrize("module_name", sorted(EXPORTS))
def test_each_old_name_is_its_new_object_with_a_warning(module_name):
    module = importlib.import_module(module_name)
    for old, new in EXPORTS[module_name].items():
        assert old not in vars(module)  # an alias, not a second definition
        with pytest.warns(FutureWarning, match=f"`{module_name}.{old}` is renamed `{module_name}.{new}`"):
            assert getattr(module, old) is getattr(module, new)


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
