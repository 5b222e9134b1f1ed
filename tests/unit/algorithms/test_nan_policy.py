"""`nan_policy`: a NaN reward stops the run by default; `skip_group` drops the groups that have one."""

import lightning.pytorch as pl
import pytest
import torch

from pareto_lightning import (
    GRPOModule,
    ListPrompts,
    MaxNormalizer,
    MultiObjectiveReward,
    PreferencePromptDataModule,
    SmoothTchebycheff,
)
from pareto_lightning.tasks import LexiconReward, LexiconTask

PROMPTS = ListPrompts(["write a note about the river", "describe the city", "hi", "write about the sea"] * 2)


class NaNRows(LexiconReward):
    """The helpfulness reward with NaN on the rows listed in ``bad`` (row indices of the ``N = B * G`` batch)."""

    def __init__(self, bad):
        super().__init__("helpfulness")
        self.bad = bad

    def __call__(self, prompts, completions):
        scores = super().__call__(prompts, completions).clone()
        scores[[i for i in self.bad if i < len(scores)]] = float("nan")
        return scores


def _fit(bad, nan_policy):
    torch.manual_seed(0)
    task = LexiconTask()
    reward = MultiObjectiveReward([NaNRows(bad), LexiconReward("harmlessness")], names=list(task.objective_names),
                                  normalizer=MaxNormalizer())  # fmt: skip
    module = GRPOModule(task.policy(max_new_tokens=4), reward, SmoothTchebycheff(), num_generations=2, beta=0.0,
                        nan_policy=nan_policy)  # fmt: skip
    seen = []
    module.compute_loss = lambda rollout, u, first, rewards: (
        seen.append(len(rollout)),
        GRPOModule.compute_loss(module, rollout, u, first, rewards),
    )[1]
    logged = {}
    module.log_dict = lambda d, **kw: logged.update(d)
    dm = PreferencePromptDataModule(PROMPTS, batch_size=3, num_eval_prompts=1)
    trainer = pl.Trainer(max_steps=1, accelerator="cpu", logger=False, enable_progress_bar=False,
                         enable_checkpointing=False, enable_model_summary=False, limit_val_batches=0)  # fmt: skip
    trainer.fit(module, dm)
    return module, seen, logged


def test_default_raises_naming_the_objective():
    with pytest.raises(ValueError, match=r"rewards of objective 0 \('helpfulness'\) contain 1 NaN"):
        _fit([3], "raise")


def test_skip_group_drops_the_groups_with_a_nan_and_counts_them():
    module, seen, logged = _fit([1, 3], "skip_group")  # rows 1 and 3: groups 0 and 1 of 3 (G = 2)
    assert seen == [2]  # one group of 2 rows trained
    assert logged["train/skipped_groups"] == 2.0
    maxima = module.reward.normalizer.max_abs  # statistics from the finite rows only
    assert torch.isfinite(maxima).all()


def test_skip_group_fails_when_the_whole_step_is_lost():
    with pytest.raises(ValueError, match=r"every group of step 0 has a NaN/inf reward"):
        _fit([0, 2, 5], "skip_group")


def test_bad_nan_policy_is_refused():
    task = LexiconTask()
    with pytest.raises(
        ValueError, match=r"`model.init_args.nan_policy` must be 'raise' or 'skip_group'; got 'skip'"
    ):
        GRPOModule(task.policy(max_new_tokens=2), task.reward(), SmoothTchebycheff(), nan_policy="skip")
