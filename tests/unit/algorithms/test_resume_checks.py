"""A checkpoint resumed under another method, scalarizer, meta-learning setting or objectives is refused."""

import lightning.pytorch as pl
import pytest
import torch

from pareto_lightning import (
    GRPOModule,
    ListPrompts,
    MetaLoop,
    MOODPOModule,
    PreferencePromptDataModule,
    SmoothTchebycheff,
    WeightedSum,
)
from pareto_lightning.tasks import LexiconTask

PROMPTS = ListPrompts(["write a note about the river", "describe the city", "hi", "write about the sea"] * 2)


def _module(cls=GRPOModule, scalarizer=None):
    torch.manual_seed(0)
    task = LexiconTask()
    kw = {"num_generations": 2, "beta": 0.0} if cls is GRPOModule else {"beta": 0.1}
    return cls(task.policy(max_new_tokens=3), task.reward(), scalarizer or SmoothTchebycheff(), **kw)


def _fit(root, module, callbacks, ckpt_path=None, max_steps=2):
    dm = PreferencePromptDataModule(PROMPTS, batch_size=2, num_eval_prompts=1)
    trainer = pl.Trainer(max_steps=max_steps, accelerator="cpu", logger=False, enable_progress_bar=False,
                         enable_model_summary=False, limit_val_batches=0, default_root_dir=root,
                         callbacks=callbacks)  # fmt: skip
    trainer.fit(module, dm, ckpt_path=ckpt_path)
    return trainer


@pytest.fixture(scope="module")
def meta_checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("meta")
    trainer = _fit(root, _module(), [MetaLoop(inner_steps=1, tasks_per_meta_step=2)])
    path = root / "meta.ckpt"
    trainer.save_checkpoint(path)
    return path


@pytest.mark.filterwarnings("ignore:Be aware that when using `ckpt_path`")
@pytest.mark.parametrize(
    ("module", "callbacks", "match"),
    [
        (lambda: _module(MOODPOModule), lambda: [MetaLoop(1, 2)], r"module: the checkpoint has 'GRPOModule'"),
        (
            lambda: _module(scalarizer=WeightedSum()),
            lambda: [MetaLoop(1, 2)],
            r"scalarizer: the checkpoint",
        ),
        (lambda: _module(), lambda: [], r"meta_loop: the checkpoint has \{'inner_steps': 1"),
        (lambda: _module(), lambda: [MetaLoop(1, 2, meta_lr=1.0)], r"'meta_lr': 1.5.*'meta_lr': 1.0"),
    ],
)
def test_resume_under_another_setup_is_refused(tmp_path, meta_checkpoint, module, callbacks, match):
    with pytest.raises(ValueError, match=rf"(?s)another training setup.*{match}"):
        _fit(tmp_path, module(), callbacks(), ckpt_path=meta_checkpoint, max_steps=4)


@pytest.mark.filterwarnings("ignore:Be aware that when using `ckpt_path`")
def test_resume_under_the_same_setup_continues(tmp_path, meta_checkpoint):
    trainer = _fit(tmp_path, _module(), [MetaLoop(1, 2)], ckpt_path=meta_checkpoint, max_steps=4)
    assert trainer.global_step == 4


def test_evaluating_a_checkpoint_under_another_recipe_is_allowed(tmp_path, meta_checkpoint):
    dm = PreferencePromptDataModule(PROMPTS, batch_size=2, num_eval_prompts=1, eval_weights=[[0.5, 0.5]])
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
                         default_root_dir=tmp_path)  # fmt: skip
    # Allowed, and said: the run's config.yaml names this recipe's method, not the checkpoint's.
    with pytest.warns(UserWarning, match=r"(?s)written by another training setup:.*module: the checkpoint has "
                                         r"'GRPOModule', this run has 'MOODPOModule'.*config.yaml records this config"):
        trainer.validate(_module(MOODPOModule), dm, ckpt_path=meta_checkpoint, verbose=False)


@pytest.mark.filterwarnings("ignore:Be aware that when using `ckpt_path`")
def test_resume_with_max_steps_not_above_the_checkpoint_is_refused(tmp_path):
    trainer = _fit(tmp_path / "run", _module(), [], max_steps=3)
    trainer.save_checkpoint(tmp_path / "step3.ckpt")
    for max_steps in (2, 3):  # Lightning would exit at once, as if it had trained
        with pytest.raises(ValueError, match=rf"`trainer.max_steps`={max_steps} but the checkpoint given to "
                                             r"`--ckpt_path` is at step 3: resuming would train nothing"):
            _fit(tmp_path, _module(), [], ckpt_path=tmp_path / "step3.ckpt", max_steps=max_steps)


def test_ideal_point_of_the_wrong_length_is_refused():
    with pytest.raises(ValueError, match=r"`model.init_args.scalarizer.init_args.ideal_point` has 3 values"):
        _module(scalarizer=SmoothTchebycheff(ideal_point=[1.0, 1.0, 1.0]))
