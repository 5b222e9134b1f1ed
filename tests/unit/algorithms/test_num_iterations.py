"""`GRPOModule(num_iterations=mu)`: each rollout serves mu optimizer steps with the clipped importance ratio."""

import copy
import math

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from pareto_lightning import GRPOModule, ListPrompts, MetaLoop, PreferencePromptDataModule, SmoothTchebycheff
from pareto_lightning.tasks import LexiconTask

PROMPTS = ListPrompts(["write a note about the river", "describe the city", "hi", "write about the sea"] * 2)
LR, EPS = 0.05, 0.2


def _module(mu, **kw):
    torch.manual_seed(0)
    task = LexiconTask()
    kw = {"num_generations": 4, "beta": 0.0, "learning_rate": LR, "epsilon": EPS, "min_lr_ratio": 1.0, **kw}
    return GRPOModule(
        task.policy(max_new_tokens=4), task.reward(), SmoothTchebycheff(), num_iterations=mu, **kw
    )


def _trainer(root, steps, callbacks=(), accumulate=1):
    return pl.Trainer(max_steps=steps, accelerator="cpu", logger=False, enable_progress_bar=False,
                      enable_model_summary=False, limit_val_batches=0, default_root_dir=root, log_every_n_steps=1,
                      accumulate_grad_batches=accumulate, callbacks=list(callbacks),
                      enable_checkpointing=any(isinstance(c, ModelCheckpoint) for c in callbacks))  # fmt: skip


def _fit(module, root, steps, ckpt_path=None, callbacks=(), accumulate=1):
    dm = PreferencePromptDataModule(PROMPTS, batch_size=2, num_eval_prompts=1)
    _trainer(root, steps, callbacks, accumulate).fit(module, dm, ckpt_path=ckpt_path)
    return dm


def _record(module):
    """Capture every rollout the module generates, and every batch it is handed."""
    rollouts, batches = [], []
    generate = module.policy.generate

    def recording(*args, **kwargs):
        rollouts.append(generate(*args, **kwargs))
        return rollouts[-1]

    module.policy.generate = recording
    step = module.training_step

    def recording_step(batch, *args, **kwargs):
        batches.append(batch["prompts"])
        return step(batch, *args, **kwargs)

    module.training_step = recording_step
    return rollouts, batches


def test_two_iterations_follow_the_clipped_ratio_written_out(tmp_path):
    module = _module(2)
    start = copy.deepcopy(module.policy)
    rollouts, batches = _record(module)
    _fit(module, tmp_path, steps=2)
    assert len(rollouts) == 1 and batches[0] == batches[1]  # one rollout, and the same batch, for both steps

    # The same two AdamW steps written out: sequence-mean GRPO loss per completion, with the ratio
    # rho_t = exp(logp_t - old_t) against the log-probs of the first step and its clip [1 - eps, 1 + eps].
    r = rollouts[0]
    u = SmoothTchebycheff()(LexiconTask().reward()(r.prompts, r.completions)[1], r.weights)  # [N]
    groups = u.view(-1, 4)
    adv = ((groups - groups.mean(-1, keepdim=True)) / (groups.std(-1, keepdim=True) + 1e-4)).flatten()  # [N]
    assert adv.abs().sum() > 0  # the groups have a spread: the update is not zero
    params = [p for p in start.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=LR, weight_decay=0.0)
    old = None
    for _ in range(2):
        logp = start.log_probs(r)  # [N, T]
        old = logp.detach() if old is None else old
        losses = []
        for i in range(len(r)):
            terms = []
            for t in range(r.completion_ids.shape[1]):
                if r.completion_mask[i, t]:
                    rho = torch.exp(logp[i, t] - old[i, t])
                    terms.append(-torch.min(rho * adv[i], rho.clamp(1 - EPS, 1 + EPS) * adv[i]))
            losses.append(torch.stack(terms).mean())
        optimizer.zero_grad()
        torch.stack(losses).mean().backward()
        optimizer.step()
    for (name, got), want in zip(module.policy.named_parameters(), start.parameters(), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6, msg=name)


def test_one_iteration_makes_a_rollout_every_step_and_keeps_none(tmp_path):
    module = _module(1)
    rollouts, batches = _record(module)
    _fit(module, tmp_path, steps=3)
    assert len(rollouts) == 3 and batches[0] != batches[1]
    assert module.rollout_reuse.state_dict() == {}  # nothing kept for later steps, nothing in checkpoints


@pytest.mark.filterwarnings("ignore:You're resuming from a checkpoint that ended before the epoch ended")
@pytest.mark.parametrize("accumulate", [1, 2])
def test_resume_between_two_iterations_of_a_rollout_is_exact(tmp_path, accumulate):
    straight = _module(2)
    _fit(straight, tmp_path / "a", steps=4, accumulate=accumulate)
    saving = _module(2)
    every_step = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=1, save_top_k=-1)
    _fit(saving, tmp_path / "b", steps=3, callbacks=[every_step], accumulate=accumulate)
    resumed = _module(2)
    rollouts, _ = _record(resumed)
    ckpt = tmp_path / "ckpt" / "epoch=0-step=1.ckpt"  # after the first of the rollout's two steps
    _fit(resumed, tmp_path / "c", steps=4, ckpt_path=ckpt, accumulate=accumulate)
    assert len(rollouts) == accumulate  # steps 1 reused the saved rollout; step 2 made new ones
    assert all(torch.equal(x, y) for x, y in zip(straight.parameters(), resumed.parameters(), strict=True))


def test_ratio_statistics_are_logged_only_when_they_can_vary(tmp_path):
    logged = {}
    for mu in (1, 2):
        module = _module(mu, learning_rate=0.5)  # a large step, so that the second iteration clips
        module.log_dict = lambda d, mu=mu, **kw: logged.setdefault(mu, []).append(dict(d))
        _fit(module, tmp_path / str(mu), steps=2)
    assert "train/clip_fraction" not in logged[1][0]
    first, second = logged[2]
    assert first["train/ratio_mean"] == pytest.approx(1.0) and float(first["train/clip_fraction"]) == 0.0
    assert (
        not math.isclose(float(second["train/ratio_mean"]), 1.0) and float(second["train/clip_fraction"]) > 0
    )


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_bad_num_iterations_is_refused(bad):
    with pytest.raises(ValueError, match=r"`model.init_args.num_iterations` must be an integer >= 1"):
        _module(bad)


def test_meta_tasks_must_be_a_multiple_of_the_reuse(tmp_path):
    with pytest.raises(
        ValueError, match=r"inner_steps`=3 must be a multiple of `model.init_args.num_iterations`=2"
    ):
        _fit(_module(2), tmp_path, steps=6, callbacks=[MetaLoop(inner_steps=3, tasks_per_meta_step=2)])


def test_train_values_are_logged_on_logging_steps_and_the_last_one(tmp_path):
    steps = []
    module = _module(1)
    module.log_dict = lambda d, **kw: steps.append(module.global_step + 1)
    dm = PreferencePromptDataModule(PROMPTS, batch_size=2, num_eval_prompts=1)
    trainer = pl.Trainer(max_steps=7, accelerator="cpu", logger=False, enable_progress_bar=False,
                         enable_model_summary=False, limit_val_batches=0, default_root_dir=tmp_path,
                         enable_checkpointing=False, log_every_n_steps=3)  # fmt: skip
    trainer.fit(module, dm)
    assert steps == [3, 6, 7]
