"""The contract between the data module and the parts that read or schedule it."""

from __future__ import annotations

import dataclasses

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader

from pareto_lightning import GRPOModule, MultiObjectiveReward, PreferencePolicy, SmoothTchebycheff
from pareto_lightning.data import PreferencePromptDataModule
from pareto_lightning.data.contract import (
    CONTRACT,
    PreferenceData,
    PreferenceSchedule,
    ScheduleError,
    preference_data,
    update_schedule,
)
from pareto_lightning.data.sources import ListPrompts
from pareto_lightning.tasks import LexiconPrompts, LexiconTask


def test_the_data_module_provides_the_contract():
    dm = PreferencePromptDataModule(ListPrompts(["a", "b", "c"]), batch_size=1, num_eval_prompts=1)
    assert isinstance(dm, PreferenceData)
    assert set(CONTRACT) <= set(dir(dm))


@pytest.mark.parametrize(
    "fields, field",
    [
        (dict(steps_per_preference=0), "steps_per_preference"),
        (dict(steps_per_preference=True), "steps_per_preference"),
        (dict(steps_per_preference=2, per_prompt_preferences=True), "per_prompt_preferences"),
        (dict(batch_reuse=0), "batch_reuse"),
        (dict(preference_group=(2, 2)), "preference_group"),
        (dict(preference_group=(0, 0)), "preference_group"),
        (dict(per_prompt_preferences=True, weights_per_prompt=3, mirror_weights=True), "mirror_weights"),
        (dict(mirror_weights=True), "mirror_weights"),
        (dict(per_prompt_preferences=True, weights_per_prompt=2, mirror_weights=1), "mirror_weights"),
    ],
)
def test_every_replacement_is_checked(fields, field):
    with pytest.raises(ScheduleError) as error:
        dataclasses.replace(PreferenceSchedule(), **fields)
    assert error.value.field == field


def test_held_steps_and_replacement():
    schedule = PreferenceSchedule()
    assert schedule.held_steps == 1
    assert dataclasses.replace(schedule, steps_per_preference=4).held_steps == 4
    with pytest.raises(dataclasses.FrozenInstanceError):
        schedule.batch_reuse = 2  # replaced, never edited


def test_no_trainer_or_no_data_module_gives_none():
    assert preference_data(None) is None
    update_schedule(None, batch_reuse=2)  # nothing to update

    class Trainer:
        datamodule = None

    assert preference_data(Trainer()) is None


class _BareData(pl.LightningDataModule):
    """A data module that serves batches but none of the contract."""

    def train_dataloader(self):
        return DataLoader(
            [{"prompts": ["write a note"], "weights": torch.tensor([[0.5, 0.5]])}], batch_size=None
        )


def test_a_data_module_without_the_contract_is_refused_at_setup_naming_what_it_lacks(tmp_path):
    task = LexiconTask()
    policy = PreferencePolicy(
        task.model(), task.tokenizer(), objective_names=task.objective_names, max_new_tokens=4
    )
    module = GRPOModule(policy, MultiObjectiveReward(task.reward_functions(), names=task.objective_names),
                        SmoothTchebycheff(mu=0.1), num_generations=2)  # fmt: skip
    trainer = pl.Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         default_root_dir=tmp_path)  # fmt: skip
    with pytest.raises(TypeError, match=r"`data`: _BareData .* lacks schedule, train_prompts, train_support, "
                       r"eval_prompts, eval_weights, eval_seen, rewind_last_batch"):  # fmt: skip
        trainer.fit(module, datamodule=_BareData())
    assert trainer.global_step == 0


def test_the_algorithm_module_and_the_meta_loop_set_their_own_fields(tmp_path):
    from pareto_lightning import MetaLoop

    task = LexiconTask()
    policy = PreferencePolicy(
        task.model(), task.tokenizer(), objective_names=task.objective_names, max_new_tokens=4
    )
    module = GRPOModule(policy, MultiObjectiveReward(task.reward_functions(), names=task.objective_names),
                        SmoothTchebycheff(mu=0.1), num_generations=2, num_iterations=2)  # fmt: skip
    dm = PreferencePromptDataModule(LexiconPrompts(8), batch_size=2, num_eval_prompts=1)
    loop = MetaLoop(inner_steps=4, tasks_per_meta_step=2)
    trainer = pl.Trainer(max_steps=8, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         limit_val_batches=0, callbacks=[loop], default_root_dir=tmp_path)  # fmt: skip
    trainer.fit(module, datamodule=dm)
    assert dm.schedule == PreferenceSchedule(steps_per_preference=4, batch_reuse=2)
