import csv
import glob
import json
import os
import subprocess
import sys

import pytest

from pareto_lightning import (
    GRPOModule,
    LinearScalarization,
    MetaLoop,
    MOODPOModule,
    ParetoEvaluation,
    SmoothTchebycheff,
)
from pareto_lightning.cli import ParetoCLI

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILTIN = sorted(glob.glob(os.path.join(ROOT, "recipes", "*.yaml")))
ABLATIONS = sorted(glob.glob(os.path.join(ROOT, "recipes", "ablations", "*.yaml")))


def _instantiate(args):
    from pareto_lightning.algorithms import PreferenceAlignmentModule
    from pareto_lightning.data import PreferencePromptDataModule

    return ParetoCLI(PreferenceAlignmentModule, PreferencePromptDataModule, subclass_mode_model=True,
                     subclass_mode_data=True, run=False, args=args,
                     trainer_defaults={"logger": False})  # fmt: skip


EXPECTED = {
    "mo_odpo": (MOODPOModule, LinearScalarization, False),
    "grid_grpo": (GRPOModule, LinearScalarization, False),
    "grid_meta_grpo": (GRPOModule, LinearScalarization, True),
    "weighted_grpo": (GRPOModule, SmoothTchebycheff, False),
    "weighted_meta": (GRPOModule, SmoothTchebycheff, True),
}


def test_the_five_methods_are_there():
    assert {os.path.basename(p)[:-5] for p in BUILTIN} == set(EXPECTED)


@pytest.mark.parametrize("path", BUILTIN, ids=os.path.basename)
def test_builtin_recipe_parses_and_instantiates(path):
    with open(path) as fh:
        first = fh.readline() + fh.readline()
    assert f"python recipes/train.py fit --config recipes/{os.path.basename(path)}" in first
    cli = _instantiate(["--config", path])
    module_cls, scal_cls, meta = EXPECTED[os.path.basename(path)[:-5]]
    assert type(cli.model) is module_cls and type(cli.model.scalarizer) is scal_cls
    assert any(isinstance(c, MetaLoop) for c in cli.trainer.callbacks) == meta
    assert any(isinstance(c, ParetoEvaluation) for c in cli.trainer.callbacks)
    assert cli.datamodule.num_objectives == 2  # linked from the policy's objective names


@pytest.mark.parametrize("path", ABLATIONS, ids=os.path.basename)
def test_ablation_overrides_apply(path):
    with open(path) as fh:
        assert (
            "python recipes/train.py fit --config recipes/weighted_meta.yaml --config recipes/ablations/"
            in fh.read()
        )
    cli = _instantiate(["--config", os.path.join(ROOT, "recipes", "weighted_meta.yaml"), "--config", path])
    if "alpha" in path:
        assert cli.datamodule.sampler.alpha.tolist() == [0.5, 0.5]
    else:
        assert cli.model.beta == 0.6


def test_scalarizer_swaps_from_the_command_line():
    cli = _instantiate(["--config", os.path.join(ROOT, "recipes", "weighted_grpo.yaml"),
                        "--model.init_args.scalarizer", "pareto_lightning.LinearScalarization"])  # fmt: skip
    assert isinstance(cli.model.scalarizer, LinearScalarization)


@pytest.mark.slow
def test_fit_end_to_end_writes_the_front(tmp_path):
    cmd = [
        sys.executable, os.path.join(ROOT, "recipes", "train.py"), "fit",
        "--config", os.path.join(ROOT, "recipes", "weighted_meta.yaml"),
        "--trainer.max_steps=8", "--trainer.val_check_interval=8", f"--trainer.default_root_dir={tmp_path}",
        "--trainer.enable_progress_bar=false", "--trainer.log_every_n_steps=1",
        "--data.init_args.num_eval_prompts=2", "--data.init_args.eval_weights=[[1,0],[0.62,0.38],[0.5,0.5],[0,1]]",
        "--data.init_args.batch_size=2", "--model.init_args.num_generations=2",
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"})  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-5000:]
    log_dir = tmp_path / "lightning_logs" / "version_0"
    assert f"Results in {log_dir}" in out.stdout
    with open(log_dir / "frontier.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["seen"] for r in rows] == ["1", "0", "1", "1"]
    assert list(rows[0]) == ["w_1", "w_2", "seen", "r_1", "r_2", "pu"]
    assert all(0.0 <= float(r["r_1"]) <= 1.0 for r in rows)
    assert (log_dir / "pareto_front.png").stat().st_size > 1000
    summary = json.loads((log_dir / "summary.json").read_text())
    assert summary["step"] == 8 and {"val/pu", "val/hv_ratio", "val_sampled/pu"} <= set(summary)
    assert len((log_dir / "samples.jsonl").read_text().splitlines()) == 8
    assert list((log_dir / "checkpoints").glob("*.ckpt"))

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"images": 0, "tensors": 0})
    acc.Reload()
    scalars = set(acc.Tags()["scalars"])
    for tag in ["val/pu", "val/pu_seen", "val/pu_unseen", "val/hypervolume", "val/spearman", "val/max_gap",
                "val/pu_regret", "val/hv_ratio", "val/hv_ceiling", "val_sampled/pu", "meta/lr",
                "train/loss", "train/zero_spread_fraction"]:  # fmt: skip
        assert tag in scalars, (tag, sorted(scalars))
    assert "val/pareto_front" in acc.Tags()["images"]
    assert any("val/samples" in t for t in acc.Tags()["tensors"])


@pytest.mark.slow
def test_predict_writes_a_jsonl_sweep(tmp_path):
    cmd = [
        sys.executable, os.path.join(ROOT, "recipes", "train.py"), "predict",
        "--config", os.path.join(ROOT, "recipes", "weighted_grpo.yaml"), f"--trainer.default_root_dir={tmp_path}",
        "--trainer.enable_progress_bar=false", "--data.init_args.num_eval_prompts=2",
        "--data.init_args.eval_weights=[[1,0],[0.37,0.63]]",
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"})  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-5000:]
    rows = [json.loads(x) for x in (tmp_path / "lightning_logs" / "version_0" / "predictions.jsonl").open()]
    assert len(rows) == 4
    assert {tuple(r["w"].values()) for r in rows} == {(1.0, 0.0), (0.37, 0.63)}
    assert set(rows[0]) == {"prompt", "w", "completion", "rewards"} and set(rows[0]["rewards"]) == {
        "helpfulness",
        "harmlessness",
    }
