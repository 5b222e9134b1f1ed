"""ParetoEvaluation's per-prompt steering and per-split Spearman: hand-worked values, logged, written, and in the
headline, in one process and under DDP and FSDP2 (``table_sweep.py`` works out the values)."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from table_sweep import EXPECTED, NAMES, PROMPTS, SEEN, WEIGHTS, TableSweep

from pareto_lightning import (
    GRPOModule,
    ListPrompts,
    MultiObjectiveReward,
    ParetoEvaluation,
    PreferencePromptDataModule,
    SmoothTchebycheff,
)
from pareto_lightning.cli import headline
from pareto_lightning.tasks import LexiconTask

SCRIPT = Path(__file__).with_name("_prompt_steering_dist_script.py")


def _validate(tmp_path, evaluation, module=None, eval_batch_size=3, logger=False, **trainer_kwargs):
    dm = PreferencePromptDataModule(ListPrompts(PROMPTS), batch_size=2, num_eval_prompts=4,
                                    eval_prompts=ListPrompts(PROMPTS), eval_batch_size=eval_batch_size,
                                    eval_weights=WEIGHTS)  # fmt: skip
    trainer = pl.Trainer(accelerator="cpu", logger=logger, enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[evaluation], default_root_dir=tmp_path, **trainer_kwargs)  # fmt: skip
    trainer.validate(module or TableSweep(), dm, verbose=False)
    return trainer, evaluation.last_summary


def test_hand_worked_values_are_logged_written_and_in_the_headline(tmp_path):
    trainer, s = _validate(
        tmp_path, ParetoEvaluation(yardstick="raw"), logger=TensorBoardLogger(tmp_path, "tb")
    )
    assert s.seen.tolist() == SEEN and s.prompt_points.shape == (4, 7, 2)
    keys = {f"{name}/{objective}": value for name, value in EXPECTED.items() for objective in NAMES}
    for key, value in keys.items():
        assert s.scalars[key] == pytest.approx(value), key
        assert s.side_scalars[key] == pytest.approx(value), key  # the samples are the greedy rewards here
    assert s.scalars["spearman_seen"] == pytest.approx(1.0) and s.scalars["spearman_unseen"] == pytest.approx(
        -1.0
    )
    log_dir = tmp_path / "tb" / "version_0"
    summary = json.loads((log_dir / "summary.json").read_text())
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir))
    acc.Reload()
    for key, value in keys.items():
        assert trainer.callback_metrics[f"val/{key}"].item() == pytest.approx(value)
        assert summary[f"val/{key}"] == pytest.approx(value) and summary[
            f"val_sampled/{key}"
        ] == pytest.approx(value)
        assert acc.Scalars(f"val/{key}")[-1].value == pytest.approx(
            value, abs=1e-6
        )  # float32 in the event file
    assert ", prompts steered simplicity 0.50 / technicality 0.50 (median Spearman 0.30 / 0.30)" in headline(
        s.scalars
    )


def test_a_partial_sweep_reports_per_prompt_steering_over_the_pairs_it_evaluated(tmp_path):
    # One batch of 6 pairs: weight 0 for the 4 prompts, weight 1 for prompts 0 and 1 (both weights seen). Prompt 0
    # rises with w (+1), prompt 1 falls (-1), prompts 2 and 3 have one weight each (undefined: 0).
    with pytest.warns(UserWarning, match=r"ran partly \(2 of 7 evaluation weights"):
        _, s = _validate(tmp_path, ParetoEvaluation(yardstick="raw"), eval_batch_size=6, limit_val_batches=1)
    assert s.prompt_points.shape == (4, 2, 2) and s.prompt_points[2:, 1].isnan().all()
    for objective in NAMES:
        assert s.scalars[f"prompt_steer_frac/{objective}"] == pytest.approx(0.25)
        assert s.scalars[f"prompt_steer_median/{objective}"] == pytest.approx(0.0)
        assert math.isnan(s.scalars[f"prompt_steer_frac_unseen/{objective}"])  # no unseen weight evaluated
        assert math.isnan(s.scalars[f"spearman_unseen/{objective}"])


def test_the_threshold_decides_which_prompts_count(tmp_path):
    # Per-prompt Spearman (all weights) 1, -1, 0, 17/28: above -0.5 three prompts, above 0.7 one.
    for threshold, share in ((-0.5, 0.75), (0.7, 0.25)):
        _, s = _validate(tmp_path, ParetoEvaluation(yardstick="raw", prompt_steer_threshold=threshold))
        assert s.scalars["prompt_steer_frac/simplicity"] == pytest.approx(share)


@pytest.mark.parametrize("threshold", [1.0, -1.5, True])
def test_a_threshold_outside_the_correlation_range_is_refused(threshold):
    with pytest.raises(
        ValueError, match=r"`trainer.callbacks\[i\].init_args.prompt_steer_threshold` must be in"
    ):
        ParetoEvaluation(prompt_steer_threshold=threshold)


def test_a_real_sweep_fills_each_pair_from_its_own_rows(tmp_path):
    # The algorithm module's sweep with a tiny policy: the per-(prompt, weight) points are the rows' greedy rewards.
    torch.manual_seed(0)
    task = LexiconTask()

    def words(prompts, completions):
        return [len(c.split()) / 20 + len(p) / 100 for p, c in zip(prompts, completions, strict=True)]

    reward = MultiObjectiveReward([words, words], names=list(task.objective_names), normalizer=None)
    module = GRPOModule(
        task.policy(max_new_tokens=6), reward, SmoothTchebycheff(), num_generations=2, beta=0.0
    )
    evaluation = ParetoEvaluation(yardstick="raw")
    _, s = _validate(tmp_path, evaluation, module=module)
    assert len(evaluation._samples) == 28
    for row in evaluation._samples:
        p, m = PROMPTS.index(row["prompt"]), WEIGHTS.index(row["w"])
        assert s.prompt_points[p, m].tolist() == pytest.approx(list(row["rewards"].values()), rel=1e-6)
    torch.testing.assert_close(s.prompt_points.mean(0), s.greedy)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["ddp", "fsdp2"])
def test_two_processes_give_the_hand_worked_values(tmp_path, mode):
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH"), str(SCRIPT.parent)) if p)
    proc = subprocess.run([sys.executable, str(SCRIPT), mode, str(tmp_path)], env=env, capture_output=True,
                          text=True, timeout=300, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads((tmp_path / f"{mode}.json").read_text())
    for name, value in EXPECTED.items():
        for objective in NAMES:
            assert result["scalars"][f"{name}/{objective}"] == pytest.approx(value), (name, objective)
    assert not torch.tensor(result["prompt_points"]).isnan().any()  # every pair, from both ranks
