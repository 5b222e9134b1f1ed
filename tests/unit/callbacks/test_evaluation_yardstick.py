"""The evaluation sweep: per-weight metric states, and a yardstick that does not move with the normalizer."""

import math

import lightning.pytorch as pl
import pytest
import torch

from pareto_lightning import (
    GRPOModule,
    ListPrompts,
    MaxNormalizer,
    MultiObjectiveReward,
    ParetoEvaluation,
    PreferencePromptDataModule,
    SmoothTchebycheff,
)
from pareto_lightning.metrics import PreferenceSweep
from pareto_lightning.tasks import LexiconTask

PROMPTS = ListPrompts(["write a note about the river", "describe the city", "hi", "write about the sea"])


def test_preference_sweep_matches_a_loop_over_rows():
    g = torch.Generator().manual_seed(0)
    weights = torch.tensor([[1.0, 0.0], [0.7, 0.3], [0.2, 0.8]], dtype=torch.float64)
    index = torch.tensor([0, 2, 2, 1, 2, 0])
    rewards = torch.rand(6, 3, 2, generator=g, dtype=torch.float64)  # [rows, G, K]
    sweep = PreferenceSweep(weights, mu=0.1)
    sweep.update(index[:4], rewards[:4])
    sweep.update(index[4:], rewards[4:])
    means = sweep.compute()
    for m in range(3):
        rows = [i for i in range(6) if index[i] == m]
        expected_point = sum(rewards[i].mean(0) for i in rows) / len(rows)
        # mu log sum_k exp(w_k (1 - r_k) / mu), per completion, written out
        gaps = [[0.1 * torch.log(sum(torch.exp(weights[m, k] * (1 - rewards[i, j, k]) / 0.1) for k in range(2)))
                 for j in range(3)] for i in rows]  # fmt: skip
        expected_pu = sum(sum(row) / 3 for row in gaps) / len(rows)
        torch.testing.assert_close(means.points[m], expected_point)
        torch.testing.assert_close(means.pu[m], expected_pu)
        assert int(means.count[m]) == len(rows)


def test_preference_sweep_refuses_bad_rows():
    sweep = PreferenceSweep(torch.tensor([[1.0, 0.0]]))
    with pytest.raises(ValueError, match=r"`rewards` must be \[b=1, G, K=2\]"):
        sweep.update(torch.tensor([0]), torch.zeros(1, 1, 3))
    with pytest.raises(ValueError, match=r"must be finite"):
        sweep.update(torch.tensor([0]), torch.tensor([[float("nan"), 0.0]]))


def _words(offset):
    def score(prompts, completions):
        return [offset + len(c.split()) / 20 for c in completions]

    return score


def _module():
    torch.manual_seed(0)
    task = LexiconTask()
    # Rewards that are never zero, so that a change of scale shows in every metric.
    reward = MultiObjectiveReward([_words(0.1), _words(0.2)], names=list(task.objective_names),
                                  normalizer=MaxNormalizer())  # fmt: skip
    return GRPOModule(task.policy(max_new_tokens=6), reward, SmoothTchebycheff(), num_generations=2, beta=0.0)


def _validate(module, evaluation, tmp_path):
    dm = PreferencePromptDataModule(PROMPTS, batch_size=2, num_eval_prompts=2,
                                    eval_weights=[[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])  # fmt: skip
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[evaluation], default_root_dir=tmp_path)  # fmt: skip
    trainer.validate(module, dm, verbose=False)
    return evaluation.last_summary


def _assert_same(a, b):
    assert a.keys() == b.keys()
    torch.testing.assert_close(torch.tensor(list(a.values())), torch.tensor(list(b.values())), equal_nan=True)


def test_same_policy_scores_the_same_while_the_normalizer_keeps_learning(tmp_path):
    module, evaluation = _module(), ParetoEvaluation(mu=0.1)
    normalizer = module.reward.normalizer
    normalizer.train()
    normalizer(torch.tensor([[0.5, 0.25], [0.25, 0.6]]))  # statistics from some training steps
    first = _validate(module, evaluation, tmp_path)
    assert first.yardstick == "normalized, statistics frozen at step 0"
    live_before = normalizer.normalize(torch.tensor([[0.2, 0.2]]))
    normalizer(torch.tensor([[1.0, 1.0]]))  # training goes on: the running maximum grows
    assert not torch.allclose(normalizer.normalize(torch.tensor([[0.2, 0.2]])), live_before)  # it did move
    second = _validate(module, evaluation, tmp_path)
    _assert_same(second.scalars, first.scalars)
    torch.testing.assert_close(second.greedy, first.greedy)
    # The frozen statistics travel in the checkpointed state: a fresh callback measures on the same scale.
    restored = ParetoEvaluation(mu=0.1)
    restored.load_state_dict(evaluation.state_dict())
    _assert_same(_validate(module, restored, tmp_path).scalars, first.scalars)
    # Measured on the live statistics instead, the same policy would have scored differently.
    raw = _validate(module, ParetoEvaluation(mu=0.1, yardstick="raw"), tmp_path)
    assert raw.yardstick == "raw rewards" and raw.scalars["pu"] != pytest.approx(first.scalars["pu"])


def test_summary_agrees_with_the_rows_it_was_built_from(tmp_path):
    module, evaluation = _module(), ParetoEvaluation(mu=0.1, yardstick="raw")
    summary = _validate(module, evaluation, tmp_path)
    for m, w in enumerate(summary.weights.tolist()):
        rows = [list(r["rewards"].values()) for r in evaluation._samples if r["w"] == w]  # greedy, raw
        assert len(rows) == 2  # num_eval_prompts
        gaps = [0.1 * math.log(sum(math.exp(w[k] * (1 - r[k]) / 0.1) for k in range(2))) for r in rows]
        assert summary.pu[m].item() == pytest.approx(sum(gaps) / 2, rel=1e-6)
        assert summary.greedy[m].tolist() == pytest.approx(
            [sum(c) / 2 for c in zip(*rows, strict=True)], rel=1e-6
        )


def _validate_with(module, evaluation, tmp_path, **trainer_kwargs):
    dm = PreferencePromptDataModule(PROMPTS, batch_size=2, num_eval_prompts=2, eval_batch_size=2,
                                    eval_weights=[[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])  # fmt: skip
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[evaluation], default_root_dir=tmp_path, **trainer_kwargs)  # fmt: skip
    trainer.validate(module, dm, verbose=False)
    return evaluation.last_summary


def test_a_partial_sweep_reports_the_weights_it_evaluated(tmp_path):
    evaluation = ParetoEvaluation(mu=0.1, yardstick="raw")
    with pytest.warns(UserWarning, match=r"ran partly \(1 of 3 evaluation weights.*`trainer.limit_val_batches`=1"):
        summary = _validate_with(_module(), evaluation, tmp_path, limit_val_batches=1)  # 2 of the 6 pairs
    assert summary.weights.tolist() == [[1.0, 0.0]] and summary.greedy.shape == (1, 2)
    assert all(math.isfinite(summary.scalars[k]) for k in ("pu", "pu_seen", "hypervolume", "spearman"))
    rows = (tmp_path / "frontier.csv").read_text().splitlines()
    assert len(rows) == 2 and rows[1].startswith("1.0000,0.0000")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(ref_point=[-0.1, -0.1, -0.1]), r"`trainer.callbacks\[i\].init_args.ref_point` must be one number or 2"),
        (dict(ideal_point=[1.0, float("nan")]), r"`trainer.callbacks\[i\].init_args.ideal_point` must be one number"),
    ],
)
def test_points_of_the_wrong_length_are_refused_at_setup(tmp_path, kwargs, match):
    module = _module()
    with pytest.raises(ValueError, match=match):
        _validate_with(module, ParetoEvaluation(**kwargs), tmp_path)
