"""A run killed by an exception mid-training leaves a checkpoint that resumes to the same weights."""

import lightning.pytorch as pl
import pytest
import torch

from pareto_lightning import (
    CrashCheckpoint,
    GRPOModule,
    ListPrompts,
    MetaLoop,
    MultiObjectiveReward,
    PreferencePromptDataModule,
    SmoothTchebycheff,
)
from pareto_lightning.tasks import LexiconReward, LexiconTask

PROMPTS = ListPrompts(["write a note about the river", "describe the city", "hi", "write about the sea"] * 2)
STEPS = 8


class FailingReward(LexiconReward):
    """The helpfulness lexicon reward, raising on its ``fail_at``-th call (0-based)."""

    def __init__(self, fail_at=None):
        super().__init__("helpfulness")
        self.fail_at, self.calls = fail_at, 0

    def __call__(self, prompts, completions):
        if self.calls == self.fail_at:
            raise RuntimeError("the reward server went away")
        self.calls += 1
        return super().__call__(prompts, completions)


def _run(root, fail_at=None, ckpt_path=None):
    torch.manual_seed(0)
    task = LexiconTask()
    reward = MultiObjectiveReward([FailingReward(fail_at), LexiconReward("harmlessness")],
                                  names=list(task.objective_names))  # fmt: skip
    module = GRPOModule(task.policy(max_new_tokens=4), reward, SmoothTchebycheff(), num_generations=2, beta=0.05,
                        learning_rate=1e-2)  # fmt: skip
    dm = PreferencePromptDataModule(PROMPTS, batch_size=2, num_eval_prompts=1)
    trainer = pl.Trainer(max_steps=STEPS, accelerator="cpu", logger=False, enable_progress_bar=False,
                         enable_model_summary=False, limit_val_batches=0, default_root_dir=root,
                         callbacks=[MetaLoop(inner_steps=2, tasks_per_meta_step=2), CrashCheckpoint()])  # fmt: skip
    trainer.fit(module, dm, ckpt_path=ckpt_path)
    return module, trainer


@pytest.mark.filterwarnings("ignore:You're resuming from a checkpoint that ended before the epoch ended")
@pytest.mark.filterwarnings("ignore:Be aware that when using `ckpt_path`")
@pytest.mark.parametrize(
    "fail_at", [3, 5]
)  # inside the second task, and at the start of a meta-iteration's task 2
def test_crash_mid_step_resumes_to_the_uninterrupted_weights(tmp_path, fail_at, capsys):
    straight, _ = _run(tmp_path / "straight")
    with pytest.raises(RuntimeError, match="the reward server went away"):
        _run(tmp_path / "crash", fail_at=fail_at)
    ckpt = tmp_path / "crash" / "checkpoints" / "on_exception.ckpt"
    assert ckpt.is_file()
    assert f"Training failed at step {fail_at}; resume with --ckpt_path" in capsys.readouterr().out
    assert torch.load(ckpt, weights_only=False)["global_step"] == fail_at
    resumed, trainer = _run(tmp_path / "resumed", ckpt_path=ckpt)
    assert trainer.global_step == STEPS
    for (name, a), b in zip(straight.named_parameters(), resumed.parameters(), strict=True):
        assert torch.equal(a, b), name
    # The run really moved: the comparison is not between two untouched initializations.
    torch.manual_seed(0)
    init = LexiconTask().policy(max_new_tokens=4)
    assert not torch.equal(next(init.parameters()), next(straight.policy.parameters()))


def test_sampling_does_not_depend_on_the_global_rng_before_a_step(tmp_path):
    def first_rollout(noise):
        torch.manual_seed(0)
        task = LexiconTask()
        module = GRPOModule(task.policy(max_new_tokens=4), task.reward(), SmoothTchebycheff(), num_generations=2,
                            beta=0.0, train_seed=7)  # fmt: skip
        dm = PreferencePromptDataModule(PROMPTS, batch_size=2, num_eval_prompts=1)
        seen = []
        module.compute_loss = lambda rollout, u, first, rewards: (
            seen.append(rollout.completions),
            GRPOModule.compute_loss(module, rollout, u, first, rewards),
        )[1]
        trainer = pl.Trainer(max_steps=1, accelerator="cpu", logger=False, enable_progress_bar=False,
                             enable_checkpointing=False, enable_model_summary=False, limit_val_batches=0,
                             default_root_dir=tmp_path)  # fmt: skip
        torch.rand(noise)  # whatever ran before fit
        trainer.fit(module, dm)
        return seen[0]

    assert first_rollout(1) == first_rollout(5)
