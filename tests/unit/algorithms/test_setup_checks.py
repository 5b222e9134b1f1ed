"""What the module checks when fitting or evaluation starts: the preferences and prompts fit the policy."""

import lightning.pytorch as pl
import pytest
import torch

from pareto_lightning import (
    GRPOModule,
    ListPrompts,
    PreferencePolicy,
    PreferencePromptDataModule,
    SmoothTchebycheff,
)
from pareto_lightning.tasks import LexiconLM, LexiconTask, LexiconTokenizer

PROMPTS = ListPrompts(["write a note about the river", "describe the city", "hi", "write about the sea"] * 2)
KEY = r"`model.init_args.policy.init_args."


def _run(tmp_path, stage="fit", policy_kwargs=None, **data_kwargs):
    torch.manual_seed(0)
    task = LexiconTask()
    policy = task.policy(**{"max_new_tokens": 3, **(policy_kwargs or {})})
    module = GRPOModule(policy, task.reward(), SmoothTchebycheff(), num_generations=2, beta=0.0)
    dm = PreferencePromptDataModule(PROMPTS, batch_size=2, num_eval_prompts=1, **data_kwargs)
    trainer = pl.Trainer(max_steps=1, accelerator="cpu", logger=False, enable_progress_bar=False,
                         enable_model_summary=False, limit_val_batches=0, default_root_dir=tmp_path)  # fmt: skip
    if stage == "fit":
        trainer.fit(module, dm)
    else:
        trainer.validate(module, dm, verbose=False)
    return module, trainer


@pytest.mark.parametrize(
    ("stage", "data_kwargs", "match"),
    [
        ("validate", dict(eval_weights="paper_table1"),
         r"\(0.99, 0.01\) of `data.init_args.eval_weights` as \(1.0, 0.0\) \(17 of 28 weights change\); set it to 2"),
        ("fit", dict(eval_weights=[[1, 0], [0.5, 0.5]], grid_divisions=4),
         r"\(0.75, 0.25\) of `data.init_args.grid_divisions` as \(0.8, 0.2\)"),
        ("fit", dict(eval_weights=[[1, 0]], grid_divisions=3), r"\(0.666667, 0.333333\) .* no short decimal form"),
    ],  # fmt: skip
    ids=["eval weights", "training grid", "thirds"],
)
def test_preferences_written_with_fewer_decimals_than_they_have_are_refused(tmp_path, stage, data_kwargs, match):
    told = r"(?s)model would be told another preference.*" + KEY + r"weight_decimals`=1 writes the preference "
    with pytest.raises(ValueError, match=told + match):
        _run(tmp_path, stage, policy_kwargs={"weight_decimals": 1}, **data_kwargs)


def test_preferences_the_decimals_write_exactly_pass(tmp_path):
    module, trainer = _run(tmp_path, policy_kwargs={"weight_decimals": 1}, eval_weights=[[1, 0], [0.5, 0.5]])
    assert trainer.global_step == 1
    # The continuous simplex is written rounded by design: only the evaluation weights are checked then.
    _run(tmp_path, policy_kwargs={"weight_decimals": 1}, eval_weights=[[1, 0]], grid_divisions=None)


def test_max_prompt_length_defaults_to_what_the_model_holds():
    policy = PreferencePolicy(LexiconLM(), LexiconTokenizer(), max_new_tokens=16)  # 128 positions
    assert policy.max_prompt_length == 112
    given = PreferencePolicy(LexiconLM(), LexiconTokenizer(), max_new_tokens=16, max_prompt_length=40)
    assert given.max_prompt_length == 40


@pytest.mark.parametrize(
    ("policy_kwargs", "match"),
    [
        (dict(max_new_tokens=128), KEY + r"max_new_tokens`=128 leaves no room for a prompt: the model holds 128"),
        (dict(max_new_tokens=16, max_prompt_length=120),
         KEY + r"max_prompt_length`=120 plus .*max_new_tokens`=16 is more than the 128 positions .* null is 112"),
    ],
)
def test_lengths_the_model_cannot_hold_are_refused_at_setup(tmp_path, policy_kwargs, match):
    module = None
    with pytest.raises(ValueError, match=match):
        module, _ = _run(tmp_path, policy_kwargs=policy_kwargs, eval_weights=[[1, 0]])
    assert module is None


def test_an_over_long_prompt_is_refused_at_setup_under_the_default_limit(tmp_path):
    long = ListPrompts([" ".join(["write a note about the river"] * 30)])  # ~180 tokens, the model holds 128
    with pytest.raises(ValueError, match=r"longest prompt of `data.init_args.eval_prompts`.*max_prompt_length`=125"):
        _run(tmp_path, "validate", eval_prompts=long, eval_weights=[[1, 0]])
    with pytest.raises(ValueError, match=r"longest prompt of `data.init_args.train_prompts`"):  # continuous simplex
        torch.manual_seed(0)
        task = LexiconTask()
        module = GRPOModule(task.policy(max_new_tokens=3), task.reward(), SmoothTchebycheff(), num_generations=2)
        dm = PreferencePromptDataModule(ListPrompts([long.prompts[0], "hi"]), batch_size=1, grid_divisions=None,
                                        eval_prompts=ListPrompts(["hi"]), num_eval_prompts=1, eval_weights=[[1, 0]])
        pl.Trainer(max_steps=1, accelerator="cpu", logger=False, enable_progress_bar=False, limit_val_batches=0,
                   enable_model_summary=False, default_root_dir=tmp_path).fit(module, dm)  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(weight_decimals=-1), KEY + r"weight_decimals` must be an integer >= 0; got -1"),
        (dict(max_prompt_length=0), KEY + r"max_prompt_length` must be an integer >= 1 or null; got 0"),
    ],
)
def test_impossible_decimals_and_lengths_are_refused_when_built(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PreferencePolicy(LexiconLM(), LexiconTokenizer(), max_new_tokens=4, **kwargs)
