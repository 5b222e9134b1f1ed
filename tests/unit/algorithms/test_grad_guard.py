"""No non-finite gradient reaches the weights: the run stops (or, on request, skips the step) before the optimizer."""

import lightning.pytorch as pl
import pytest
import torch

from pareto_lightning import (
    CrashCheckpoint,
    GRPOModule,
    ListPrompts,
    MetaLoop,
    PreferencePromptDataModule,
    SmoothTchebycheff,
)
from pareto_lightning.algorithms.guard import GradientGuard
from pareto_lightning.finite import NonFiniteError, nonfinite_gradients
from pareto_lightning.tasks import LexiconTask

PROMPTS = ListPrompts(["write a note about the river", "describe the city", "hi", "write about the sea"] * 2)
STEPS = 8


class Snapshots(pl.Callback):
    """The policy's weights just before and just after each optimizer step (listed first among the callbacks, so
    ``MetaLoop``'s own moves at task boundaries come before ``before`` and after ``after``), by step index."""

    def __init__(self):
        self.before, self.after = {}, {}

    @staticmethod
    def _copy(pl_module):
        return {n: p.detach().clone() for n, p in pl_module.policy.named_parameters()}

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        self.before[trainer.global_step] = self._copy(pl_module)

    def on_train_batch_end(self, trainer, pl_module, *args):
        self.after[trainer.global_step - 1] = self._copy(pl_module)


def _run(root, nan_steps=(), **module_kwargs):
    """A MetaLoop run (2 tasks x 2 steps per meta-iteration) whose gradients are NaN at the ``nan_steps``: a hook
    on one parameter writes the NaN during the backward pass, as a faulty attention kernel would."""
    torch.manual_seed(0)
    task = LexiconTask()
    module = GRPOModule(task.policy(max_new_tokens=4), task.reward(), SmoothTchebycheff(), num_generations=2,
                        beta=0.05, learning_rate=1e-2, **module_kwargs)  # fmt: skip
    target = dict(module.policy.named_parameters())["model.model.norm.weight"]
    target.register_hook(lambda g: g * float("nan") if module.global_step in nan_steps else g)
    snapshots = Snapshots()
    dm = PreferencePromptDataModule(PROMPTS, batch_size=2, num_eval_prompts=1)
    trainer = pl.Trainer(max_steps=STEPS, accelerator="cpu", logger=False, enable_progress_bar=False,
                         enable_model_summary=False, limit_val_batches=0, default_root_dir=root,
                         callbacks=[snapshots, MetaLoop(inner_steps=2, tasks_per_meta_step=2),
                                    CrashCheckpoint()])  # fmt: skip
    trainer.fit(module, dm)
    return module, snapshots


def _all_finite(weights):
    return all(torch.isfinite(t).all() for t in weights.values())


def test_nonfinite_gradients_names_the_parameters_in_order():
    a, b, c = (torch.zeros(3, requires_grad=True) for _ in range(3))
    a.grad, b.grad = torch.tensor([0.0, float("inf"), 1.0]), torch.tensor([float("nan"), 0.0, 0.0])
    assert nonfinite_gradients([("a", a), ("b", b), ("c", c)]) == ["a", "b"]  # c has no gradient
    assert nonfinite_gradients([("c", c)]) == []


def test_default_stops_before_the_optimizer_and_keeps_the_last_finite_weights(tmp_path, capsys):
    with pytest.raises(NonFiniteError, match=r"non-finite gradients \(NaN/inf\) at step 3, in 1 parameter\(s\) "
                       r"of this rank: model.model.norm.weight\. The step was not applied") as info:  # fmt: skip
        _run(tmp_path, nan_steps=(3,))
    assert "grad_nan_policy: skip_step" in str(info.value) and "cuDNN SDPA" in str(info.value)
    ckpt = torch.load(tmp_path / "checkpoints" / "on_exception.ckpt", weights_only=False)
    assert ckpt["global_step"] == 3
    state = {k.removeprefix("policy."): v for k, v in ckpt["state_dict"].items() if k.startswith("policy.")}
    assert _all_finite(state)
    _, clean = _run(tmp_path / "clean")  # the same run without the NaN: its weights after step 3
    for name, value in clean.after[2].items():
        assert torch.equal(state[name], value), name


def test_skip_step_leaves_the_weights_and_counts_the_steps(tmp_path):
    module, snapshots = _run(tmp_path, nan_steps=(3, 5), grad_nan_policy="skip_step", max_skipped_steps=2)
    assert module.grad_guard.skipped == 2
    assert all(_all_finite(w) for w in snapshots.after.values())
    for step in range(STEPS):  # the skipped steps changed nothing, every other step changed the weights
        same = [torch.equal(snapshots.after[step][n], w) for n, w in snapshots.before[step].items()]
        assert all(same) if step in (3, 5) else not all(same), step


def test_skip_step_fails_past_the_limit(tmp_path):
    with pytest.raises(NonFiniteError, match=r"2 optimizer steps had non-finite gradients .*"
                       r"`model.init_args.max_skipped_steps`=1"):  # fmt: skip
        _run(tmp_path, nan_steps=(1, 2), grad_nan_policy="skip_step", max_skipped_steps=1)


def test_the_skip_count_survives_a_checkpoint():
    guard = GradientGuard("skip_step")
    guard.skipped = 3
    other = GradientGuard("skip_step")
    other.load_state_dict(guard.state_dict())
    assert other.skipped == 3


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"grad_nan_policy": "skip"}, r"`model.init_args.grad_nan_policy` must be 'raise' or 'skip_step'; got 'skip'"),
        ({"max_skipped_steps": -1}, r"`model.init_args.max_skipped_steps` must be an integer >= 0; got -1"),
    ],
)
def test_bad_guard_settings_are_refused(kwargs, match):
    task = LexiconTask()
    with pytest.raises(ValueError, match=match):
        GRPOModule(task.policy(max_new_tokens=2), task.reward(), SmoothTchebycheff(), **kwargs)
