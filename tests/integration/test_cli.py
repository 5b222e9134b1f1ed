import csv
import glob
import json
import os
import subprocess
import sys

import pytest

from pareto_lightning import (
    GRPOModule,
    MetaLoop,
    MOODPOModule,
    ParetoEvaluation,
    SmoothTchebycheff,
    WeightedSum,
)
from pareto_lightning.cli import ParetoCLI
from pareto_lightning.tasks import LexiconInstructLM, LexiconLM

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILTIN = sorted(glob.glob(os.path.join(ROOT, "recipes", "*.yaml")))
ABLATIONS = sorted(glob.glob(os.path.join(ROOT, "recipes", "ablations", "*.yaml")))
# The recipes' supervised base takes about a minute; these tests check wiring, so the stage runs a few steps.
FEW_BASE_STEPS = "--model.init_args.policy.init_args.model.init_args.steps=3"


def _instantiate(args):
    from pareto_lightning.algorithms import PreferenceAlignmentModule
    from pareto_lightning.data import PreferencePromptDataModule

    return ParetoCLI(PreferenceAlignmentModule, PreferencePromptDataModule, subclass_mode_model=True,
                     subclass_mode_data=True, run=False, args=args,
                     trainer_defaults={"logger": False})  # fmt: skip


EXPECTED = {
    "mo_odpo": (MOODPOModule, WeightedSum, False),
    "grid_grpo": (GRPOModule, WeightedSum, False),
    "grid_meta_grpo": (GRPOModule, WeightedSum, True),
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
    cli = _instantiate(["--config", path, FEW_BASE_STEPS])
    assert isinstance(cli.model.policy.model, LexiconInstructLM)
    module_cls, scal_cls, meta = EXPECTED[os.path.basename(path)[:-5]]
    assert type(cli.model) is module_cls and type(cli.model.scalarizer) is scal_cls
    assert any(isinstance(c, MetaLoop) for c in cli.trainer.callbacks) == meta
    assert any(isinstance(c, ParetoEvaluation) for c in cli.trainer.callbacks)
    assert cli.datamodule.num_objectives == 2  # linked from the policy's objective names


@pytest.mark.parametrize("path", ABLATIONS, ids=os.path.basename)
def test_ablation_overrides_apply(path):
    with open(path) as fh:
        text = fh.read()
    base = "weighted_grpo.yaml" if "per_prompt" in path else "weighted_meta.yaml"
    assert f"python recipes/train.py fit --config recipes/{base} --config recipes/ablations/" in text
    args = ["--config", os.path.join(ROOT, "recipes", base), "--config", path]
    cli = _instantiate(args if "from_scratch" in path else [*args, FEW_BASE_STEPS])
    name = os.path.basename(path)[:-5]
    if name == "alpha_0.5":
        assert cli.datamodule.sampler.alpha.tolist() == [0.5, 0.5]
    elif name == "beta_0.6":
        assert cli.model.beta == 0.6
    elif name == "from_scratch":
        assert type(cli.model.policy.model) is LexiconLM
    elif name == "per_prompt":
        assert cli.datamodule.per_prompt_preferences
    elif name == "outer_nesterov":
        loop = next(c for c in cli.trainer.callbacks if isinstance(c, MetaLoop))
        assert (loop.meta_lr, loop.outer_momentum, loop.outer_nesterov) == (0.75, 0.5, True)
        assert any(isinstance(c, ParetoEvaluation) for c in cli.trainer.callbacks)
    else:
        raise AssertionError(f"no check for the ablation {name}")


def test_scalarizer_swaps_from_the_command_line():
    cli = _instantiate(["--config", os.path.join(ROOT, "recipes", "weighted_grpo.yaml"), FEW_BASE_STEPS,
                        "--model.init_args.scalarizer", "pareto_lightning.WeightedSum"])  # fmt: skip
    assert isinstance(cli.model.scalarizer, WeightedSum)


@pytest.mark.slow
def test_fit_end_to_end_writes_the_front(tmp_path):
    cmd = [
        sys.executable, os.path.join(ROOT, "recipes", "train.py"), "fit",
        "--config", os.path.join(ROOT, "recipes", "weighted_meta.yaml"),
        "--trainer.max_steps=8", "--trainer.val_check_interval=8", f"--trainer.default_root_dir={tmp_path}",
        "--trainer.enable_progress_bar=false", "--trainer.log_every_n_steps=1",
        "--data.init_args.num_eval_prompts=2", "--data.init_args.eval_weights=[[1,0],[0.62,0.38],[0.5,0.5],[0,1]]",
        "--data.init_args.batch_size=2", "--model.init_args.num_generations=2", "--seed_everything=3",
        "--model.init_args.policy.init_args.model.init_args.steps=20",
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=tmp_path,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"})  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-5000:]
    log_dir = tmp_path / "lightning_logs" / "version_0"
    assert f"Results in {log_dir}" in out.stdout
    # The line before it gives the headline figures of the last evaluation.
    headline = out.stdout.splitlines()[out.stdout.splitlines().index(next(
        line for line in out.stdout.splitlines() if line.startswith("Results in"))) - 1]  # fmt: skip
    assert headline.startswith("Step 8: PU seen ") and "HV ratio" in headline and "Spearman" in headline
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
        "--data.init_args.eval_weights=[[1,0],[0.37,0.63]]", FEW_BASE_STEPS,
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=tmp_path,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"})  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-5000:]
    rows = [json.loads(x) for x in (tmp_path / "lightning_logs" / "version_0" / "predictions.jsonl").open()]
    assert len(rows) == 4
    assert {tuple(r["w"].values()) for r in rows} == {(1.0, 0.0), (0.37, 0.63)}
    assert set(rows[0]) == {"prompt", "w", "completion", "rewards"} and set(rows[0]["rewards"]) == {
        "helpfulness",
        "harmlessness",
    }


def test_three_objective_recipe_parses_and_instantiates():
    path = os.path.join(ROOT, "recipes", "k3", "weighted_meta.yaml")
    with open(path) as fh:
        assert "python recipes/train.py fit --config recipes/k3/weighted_meta.yaml" in fh.read()
    cli = _instantiate(["--config", path, FEW_BASE_STEPS])
    assert cli.datamodule.num_objectives == 3 and len(cli.datamodule.eval_weights) == 231
    assert cli.model.policy.model.prompt_format["objective_names"] == [
        "helpfulness",
        "harmlessness",
        "honesty",
    ]
    assert [f.name for f in cli.model.reward._functions] == ["helpfulness", "harmlessness", "honesty"]
    evaluation = next(c for c in cli.trainer.callbacks if isinstance(c, ParetoEvaluation))
    assert evaluation.task.num_objectives == 3
    assert int(cli.datamodule.eval_seen.sum()) == 66  # the tenths grid is seen, the other 165 weights are not


def test_main_ends_the_process_group_it_ran_under(tmp_path, monkeypatch):
    """A gloo process that exits with its group alive can abort at exit; ``main`` destroys the group once run."""
    import torch.distributed as dist

    from pareto_lightning import cli, end_process_group

    ran_with_group = []
    monkeypatch.setattr(
        cli, "ParetoCLI", lambda *a, **k: ran_with_group.append(dist.is_initialized()) or "the cli"
    )
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        assert cli.main([]) == "the cli"
        assert ran_with_group == [True] and not dist.is_initialized()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    end_process_group()  # without a group: nothing to do, no error


def test_each_reward_function_gets_its_own_key_unless_the_config_set_one():
    from jsonargparse import Namespace

    from pareto_lightning.cli import _set_function_keys

    def spec(class_path, **init_args):
        return Namespace(class_path=class_path, init_args=Namespace(**init_args))

    functions = [
        spec("pareto_lightning.rewards.TextstatScore", key="model.init_args.reward.init_args.functions[i]"),
        spec("pareto_lightning.rewards.VaderSentiment", key="my.own.key"),
        spec("pareto_lightning.tasks.LexiconLM"),  # no `key` argument: left alone
        spec("pareto_lightning.rewards.LLMJudge"),  # `key` not filled in yet
    ]
    config = Namespace()
    config["model.init_args.reward.init_args.functions"] = functions
    _set_function_keys(config)
    assert [f.init_args.get("key") for f in functions] == [
        "model.init_args.reward.init_args.functions[0]",
        "my.own.key",
        None,
        "model.init_args.reward.init_args.functions[3]",
    ]
