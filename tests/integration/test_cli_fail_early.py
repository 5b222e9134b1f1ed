"""The command line refuses bad input before any work, says so in one message, and keeps a failed run's work."""

import json
import os
import re
import subprocess
import sys

import pytest

from pareto_lightning import CrashCheckpoint
from pareto_lightning.callbacks.progress import StepProgressBar
from pareto_lightning.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RECIPE = os.path.join(ROOT, "recipes", "weighted_meta.yaml")
TINY = [
    "--model.init_args.policy.init_args.model.init_args.steps=3", "--trainer.max_steps=8",
    "--trainer.val_check_interval=8", "--trainer.enable_progress_bar=false", "--data.init_args.num_eval_prompts=1",
    "--data.init_args.eval_weights=[[1,0],[0.5,0.5]]", "--data.init_args.batch_size=2",
    "--model.init_args.num_generations=2", "--model.init_args.eval_num_generations=1",
]  # fmt: skip


def _cli(tmp_path, *args, subcommand="fit"):
    return main([subcommand, "--config", RECIPE, *TINY, f"--trainer.default_root_dir={tmp_path}", *args])


def test_conflicting_num_objectives_is_refused(tmp_path):
    with pytest.raises(SystemExit):
        _cli(tmp_path, "--data.init_args.num_objectives=3")


def test_config_error_is_one_message(tmp_path):
    cmd = [sys.executable, os.path.join(ROOT, "recipes", "train.py"), "fit", "--config", RECIPE, TINY[0],
           "--model.init_args.beta=-1"]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"})  # fmt: skip
    assert out.returncode == 2
    lines = [line for line in out.stderr.splitlines() if line.strip() and not line.startswith("Seed set")]
    assert lines[0] == "error: invalid GRPOModule configuration:", out.stderr
    assert lines[1].strip() == "`model.init_args.beta` must be >= 0; got -1.0."
    assert len(lines) == 3 and "PARETO_LIGHTNING_TRACEBACK=1" in lines[2]
    full = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "PARETO_LIGHTNING_TRACEBACK": "1"})  # fmt: skip
    assert "Traceback (most recent call last)" in full.stderr


def test_missing_prompt_column_fails_before_any_model_loads(tmp_path, capsys):
    data = tmp_path / "prompts.jsonl"
    data.write_text(json.dumps({"text": "write a note"}) + "\n")
    with pytest.raises(SystemExit):
        _cli(tmp_path, "--data.init_args.train_prompts=pareto_lightning.HFPrompts",
             f"--data.init_args.train_prompts.init_args.data_files={data}",
             "--model.init_args.policy.init_args.model=/no/such/model")  # fmt: skip
    assert (
        "`data.init_args.train_prompts.init_args.prompt_column`='prompt' is not a column"
        in capsys.readouterr().err
    )


def test_eval_prompt_too_long_is_refused_before_training(tmp_path, capsys):
    # Training prompts fit (10 tokens + the preference line); the evaluation prompts are longer.
    with pytest.raises(SystemExit):
        _cli(tmp_path, "--model.init_args.policy.init_args.max_prompt_length=24",
             "--data.init_args.eval_prompts=pareto_lightning.ListPrompts",
             "--data.init_args.eval_prompts.init_args.prompts=[write a short note about the river and the city "
             "and the garden and the school]")  # fmt: skip
    err = capsys.readouterr().err
    assert "the longest prompt of `data.init_args.eval_prompts`" in err and "max_prompt_length`=24" in err
    assert not list(tmp_path.glob("**/*.ckpt")) and "Training failed" not in err  # not one step trained


@pytest.mark.filterwarnings("ignore:Be aware that when using `ckpt_path`")
def test_fit_has_a_crash_checkpoint_and_validate_reports_the_checkpoint_step(
    tmp_path, capsys, recwarn, caplog
):
    cli = _cli(tmp_path)
    assert sum(isinstance(c, CrashCheckpoint) for c in cli.trainer.callbacks) == 1
    # Unlike Lightning's OnExceptionCheckpoint, it does not turn a fresh fit into a resume from "last".
    assert not any('ckpt_path="last"' in str(w.message) for w in recwarn)
    # The expected messages are silenced: frozen modules in eval mode, a torch deprecation inside Lightning, an
    # advertisement.
    assert not any("eval mode" in str(w.message) or "LeafSpec" in str(w.message) for w in recwarn)
    assert "GPU available" in caplog.text and "Tip:" not in caplog.text
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("Results in") and "summary.json" in last and "checkpoints/" in last
    ckpt = tmp_path / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt"
    with pytest.warns(
        UserWarning, match=r"`validate` without `--ckpt_path` evaluates the weights the config"
    ):
        _cli(tmp_path, subcommand="validate")
    _cli(tmp_path, f"--ckpt_path={ckpt}", subcommand="validate")
    log_dir = tmp_path / "lightning_logs" / "version_2"
    assert json.loads((log_dir / "summary.json").read_text())["step"] == 8
    assert (log_dir / "evaluations" / "step_000008.csv").is_file()
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert "summary.json" in last and "checkpoints/" not in last  # validate writes no checkpoint


def test_progress_bar_counts_steps():
    from pareto_lightning.algorithms import PreferenceAlignmentModule
    from pareto_lightning.cli import ParetoCLI
    from pareto_lightning.data import PreferencePromptDataModule

    cli = ParetoCLI(PreferenceAlignmentModule, PreferencePromptDataModule, subclass_mode_model=True,
                    subclass_mode_data=True, run=False, args=["--config", RECIPE, *TINY[:1]])  # fmt: skip
    bars = [c for c in cli.trainer.callbacks if isinstance(c, StepProgressBar)]
    assert len(bars) == 1 and bars[0]._get_train_description(0).strip() == "Training"


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda d: (d / "notes.txt").write_text("not a checkpoint"), r"notes.txt is not a checkpoint"),
        (lambda d: None, r"does not exist"),
    ],
)
def test_bad_ckpt_path_is_refused_before_models_build(tmp_path, capsys, make, match):
    make(tmp_path)
    with pytest.raises(SystemExit):
        _cli(
            tmp_path,
            f"--ckpt_path={tmp_path / 'notes.txt'}",
            "--model.init_args.policy.init_args.model=/no/such",
        )
    err = capsys.readouterr().err
    assert re.search(r"`--ckpt_path` .*" + match, err), err
    assert "weights_only" not in err


def test_missing_local_model_folder_is_named(tmp_path, capsys):
    with pytest.raises(SystemExit):
        _cli(tmp_path, "--model.init_args.policy.init_args.model=/no/such/model")
    err = capsys.readouterr().err
    assert (
        "`model.init_args.policy.init_args.model`: the policy model folder '/no/such/model' does not exist"
        in err
    )
    assert "Repo id" not in err


def test_train_prompt_too_long_is_refused_before_training(tmp_path, capsys):
    # The evaluation prompts fit; one training prompt of the file is longer than the limit.
    data = tmp_path / "train.jsonl"
    long = "write a short note about the river and the city and the garden and the school"
    data.write_text("\n".join(json.dumps({"prompt": p}) for p in ["write a note", long, "a note"]) + "\n")
    with pytest.raises(SystemExit):
        _cli(tmp_path, "--model.init_args.policy.init_args.max_prompt_length=24",
             "--data.init_args.train_prompts=pareto_lightning.HFPrompts",
             f"--data.init_args.train_prompts.init_args.data_files={data}",
             "--data.init_args.eval_prompts=pareto_lightning.ListPrompts",
             "--data.init_args.eval_prompts.init_args.prompts=[write a note]")  # fmt: skip
    err = capsys.readouterr().err
    assert (
        "the longest prompt of `data.init_args.train_prompts`" in err
        and "'write a short note about the" in err
    )
    assert not list(tmp_path.glob("**/*.ckpt")) and "Training failed" not in err  # not one step trained


def _truncated_checkpoint(folder):
    import torch

    path = folder / "last.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1000)}, "global_step": 8}, path)
    path.write_bytes(path.read_bytes()[:-300])  # cut off while being copied
    return path


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda d: (d / "lightning_logs").mkdir() or d, r"is a folder, not a checkpoint"),
        (_truncated_checkpoint, r"last.ckpt is a truncated or corrupt checkpoint"),
    ],
    ids=["run folder", "truncated"],
)
def test_a_folder_or_a_truncated_checkpoint_is_one_message(tmp_path, capsys, make, match):
    path = make(tmp_path)
    with pytest.raises(SystemExit):
        _cli(tmp_path, f"--ckpt_path={path}", "--model.init_args.policy.init_args.model=/no/such")
    err = capsys.readouterr().err
    assert re.search(r"`--ckpt_path` .*" + match, err) and "Traceback" not in err, err


def test_an_unwritable_root_dir_is_one_message(tmp_path, capsys):
    (tmp_path / "afile").write_text("not a folder")
    with pytest.raises(SystemExit):
        _cli(tmp_path, f"--trainer.default_root_dir={tmp_path / 'afile' / 'runs'}")
    err = capsys.readouterr().err
    assert "`trainer.default_root_dir`=" in err and "is not a folder this run can write to" in err, err


@pytest.mark.parametrize(
    ("override", "key", "reason"),
    [
        ('--data.init_args.eval_weights=[["a", 1]]', "data.init_args.eval_weights", "Got value: a"),
        ('--model.init_args.reward.init_args.functions=[{"class_path": "pareto_lightning.tasks.LexiconRewrd", '
         '"init_args": {"objective": "helpfulness"}}]', "model.init_args.reward.init_args.functions",
         "has no attribute 'LexiconRewrd'"),  # fmt: skip
    ],
    ids=["string in eval_weights", "misspelt class_path"],
)
def test_a_value_the_parser_refuses_is_one_short_message(tmp_path, capsys, override, key, reason):
    with pytest.raises(SystemExit) as info:
        _cli(tmp_path, override)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert info.value.code == 2 and len(lines) == 2, err
    assert lines[0].startswith(f"error: `{key}`") and reason in lines[0], err


@pytest.mark.parametrize("flag", ["--trainer.limit_val_batches=1", "--trainer.fast_dev_run=true"])
def test_the_first_flags_a_lightning_user_tries_run_a_partial_sweep(tmp_path, capsys, flag):
    # Two evaluation weights, one pair per batch: one batch evaluates the first weight only.
    with pytest.warns(UserWarning, match=r"ran partly \(1 of 2 evaluation weights"):
        cli = _cli(tmp_path, flag, "--data.init_args.eval_batch_size=1")
    assert cli.trainer.global_step == (1 if "fast_dev_run" in flag else 8)
    assert capsys.readouterr().out.count("Step ") == 1  # the headline of the sweep


def test_an_evaluation_inside_a_meta_iteration_is_refused_before_training(tmp_path, capsys):
    with pytest.raises(SystemExit):
        _cli(tmp_path, "--trainer.val_check_interval=3")
    err = capsys.readouterr().err
    assert "`trainer.val_check_interval`=3 can evaluate inside a meta-iteration" in err, err
    assert not list(tmp_path.glob("**/*.ckpt")) and "Training failed" not in err


def test_an_over_long_prompt_is_refused_under_the_limit_the_model_sets(tmp_path, capsys):
    # max_prompt_length is left null: the recipe's model holds 128 positions, 16 of them for the completion.
    long = " ".join(["write a short note about the river"] * 40)
    with pytest.raises(SystemExit):
        _cli(tmp_path, "--data.init_args.eval_prompts=pareto_lightning.ListPrompts",
             f"--data.init_args.eval_prompts.init_args.prompts=[{long}]")  # fmt: skip
    err = capsys.readouterr().err
    assert "the longest prompt of `data.init_args.eval_prompts`" in err and "max_prompt_length`=112" in err, err
    assert not list(tmp_path.glob("**/*.ckpt")) and "Training failed" not in err
