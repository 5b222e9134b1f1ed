"""MetaLoop: Reptile trajectory by hand, optimizer-state handling, crash/resume, checkpoints, bad input."""

from __future__ import annotations

import copy
import math

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import Logger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from pareto_lightning.callbacks import MetaLoop
from pareto_lightning.data import PreferencePromptDataModule
from pareto_lightning.data.sources import ListPrompts

K = r"`trainer\.callbacks\[i\]\.init_args"  # the MetaLoop entry, as error messages name it

THETA_0 = [0.5, -1.0]
LR = 0.1


def _grads(n: int) -> torch.Tensor:
    """A fixed, non-trivial gradient per batch: [n, 2] float64."""
    k = torch.arange(n, dtype=torch.float64)
    return torch.stack([torch.sin(1.3 * k + 0.2), torch.cos(0.7 * k) - 0.3], dim=1)  # [n, 2]


class GradModel(pl.LightningModule):
    """theta [2] float64; loss (g * theta).sum() has gradient exactly g.

    ``g`` is the batch (``by_step=False``) or ``grads[global_step]`` (``by_step=True``: data that depends only
    on the optimizer step, so a resumed run sees the same gradients although Lightning restarts a map-style
    loader at its first batch).
    """

    def __init__(self, grads: torch.Tensor, optimizer: str = "sgd", by_step: bool = False) -> None:
        super().__init__()
        self.theta = nn.Parameter(torch.tensor(THETA_0, dtype=torch.float64))
        self.frozen = nn.Parameter(torch.tensor([7.0], dtype=torch.float64), requires_grad=False)
        self.grads, self.optimizer_name, self.by_step = grads, optimizer, by_step
        self.crash_at: int | None = None
        self.utilities: dict[int, float] = {}

    def training_step(self, batch, batch_idx):
        step = self.trainer.global_step
        if self.crash_at is not None and step == self.crash_at:
            raise RuntimeError("CRASH")
        g = self.grads[step] if self.by_step else batch[0][0]  # [2]
        loss = (g * self.theta).sum()
        if self.utilities:  # as the algorithm modules report it: in the step's outputs
            return {"loss": loss, "utility": torch.tensor(self.utilities[step])}
        return loss

    def configure_optimizers(self):
        if self.optimizer_name == "adamw":
            return torch.optim.AdamW([self.theta], lr=LR, weight_decay=0.01)
        return torch.optim.SGD([self.theta], lr=LR)


class Recorder(Callback):
    """Parameters at the start of every optimizer step and optimizer-state size just before each step."""

    def __init__(self) -> None:
        self.starts: dict[int, list[float]] = {}
        self.state_sizes: dict[int, int] = {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.starts.setdefault(trainer.global_step, pl_module.theta.tolist())

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        self.state_sizes[trainer.global_step] = len(optimizer.state)


class ListLogger(Logger):
    """Keeps every logged metric as {name: {step: value}}."""

    def __init__(self) -> None:
        super().__init__()
        self.metrics: dict[str, dict[int, float]] = {}

    @property
    def name(self) -> str:
        return "list"

    @property
    def version(self) -> int:
        return 0

    def log_hyperparams(self, *args, **kwargs) -> None:
        pass

    def log_metrics(self, metrics, step=None) -> None:
        for k, v in metrics.items():
            self.metrics.setdefault(k, {})[step] = float(v)


def _trainer(tmp_path, callbacks, max_steps: int, accumulate: int = 1, logger=False, ckpt: bool = False):
    return pl.Trainer(
        accelerator="cpu", devices=1, max_steps=max_steps, accumulate_grad_batches=accumulate, logger=logger,
        callbacks=callbacks, enable_checkpointing=ckpt, enable_progress_bar=False, enable_model_summary=False,
        log_every_n_steps=1, default_root_dir=tmp_path, num_sanity_val_steps=0, limit_val_batches=0,
    )  # fmt: skip


def _loader(n: int) -> DataLoader:
    return DataLoader(TensorDataset(_grads(n)), batch_size=1, shuffle=False)


def reptile_reference(step_grads: list[list[float]], inner: int, tasks: int, eps: list[float]):
    """Plain-python Reptile with SGD: parameters at the start of each step, step norms, final parameters."""
    theta, k, starts, norms = list(THETA_0), 0, [], []
    for eps_t in eps:
        anchor, delta_sum = list(theta), [0.0, 0.0]
        for _ in range(tasks):
            phi = list(anchor)
            for _ in range(inner):
                starts.append(list(phi))
                phi = [x - LR * g for x, g in zip(phi, step_grads[k], strict=True)]
                k += 1
            delta_sum = [d + p - a for d, p, a in zip(delta_sum, phi, anchor, strict=True)]
        theta = [a + eps_t * d / tasks for a, d in zip(anchor, delta_sum, strict=True)]
        norms.append(math.hypot(*[eps_t * d / tasks for d in delta_sum]))
    return starts, norms, theta


# ---------------------------------------------------------------------------------------------------- maths
@pytest.mark.parametrize("accumulate", [1, 2])
@pytest.mark.parametrize(
    ("schedule", "eps"),
    [("linear", [1.5, 1.0, 0.5]), ("constant", [1.5, 1.5, 1.5])],
    ids=["linear", "constant"],
)
def test_sgd_trajectory_matches_hand_written_reptile(tmp_path, schedule, eps, accumulate):
    inner, tasks, iterations = 2, 2, 3
    steps = inner * tasks * iterations
    micro = _grads(steps * accumulate)  # [steps * accumulate, 2]
    # Lightning scales each micro-batch loss by 1/accumulate: a step's gradient is its micro-batches' mean.
    step_grads = micro.view(steps, accumulate, 2).mean(1).tolist()
    starts, _, final = reptile_reference(step_grads, inner, tasks, eps)

    model, rec = GradModel(micro), Recorder()
    loop = MetaLoop(
        inner_steps=inner, tasks_per_meta_step=tasks, meta_lr_schedule=schedule, total_meta_steps=3
    )
    _trainer(tmp_path, [rec, loop], steps, accumulate).fit(model, _loader(steps * accumulate))

    assert sorted(rec.starts) == list(range(steps))
    for k in range(steps):
        torch.testing.assert_close(torch.tensor(rec.starts[k]), torch.tensor(starts[k]), rtol=0, atol=1e-6)
    torch.testing.assert_close(
        model.theta.detach(), torch.tensor(final, dtype=torch.float64), rtol=0, atol=1e-6
    )
    # The anchor was restored after task 1: task 2 started where task 1 did.
    assert rec.starts[inner] == rec.starts[0]
    assert model.frozen.item() == 7.0  # frozen parameters are no part of the loop
    assert (loop._iteration, loop._anchor, loop._delta_sum) == (3, None, None)


def test_logged_meta_metrics(tmp_path):
    inner, tasks, steps = 2, 2, 8
    grads = _grads(steps)
    _, norms, _ = reptile_reference(grads.tolist(), inner, tasks, [1.5, 0.75])
    model, logger = GradModel(grads), ListLogger()
    model.utilities = {k: 10.0 + k * k for k in range(steps)}
    loop = MetaLoop(inner_steps=inner, tasks_per_meta_step=tasks)  # T derived: 8 // (2 * 2) = 2
    _trainer(tmp_path, [loop], steps, logger=logger).fit(model, _loader(steps))

    # Lightning's logger step counts optimizer steps from 0 (the meta step after global_step 4 is logged at 3)
    # and re-sends a step-logged value on later steps until it is logged again: compare where values are new.
    m = {k: {s: v for s, v in logged.items() if s % 2 == 1} for k, logged in logger.metrics.items()}
    assert min(logger.metrics["meta/lr"]) == 3 and min(logger.metrics["meta/task_utility"]) == 1
    assert (m["meta/lr"][3], m["meta/lr"][7]) == (1.5, 0.75)
    assert (m["meta/iteration"][3], m["meta/iteration"][7]) == (1.0, 2.0)
    assert (m["meta/step_norm"][3], m["meta/step_norm"][7]) == pytest.approx(norms, rel=1e-6)  # float32 logs
    expected_utility = {s: (model.utilities[s - 1] + model.utilities[s]) / 2 for s in (1, 3, 5, 7)}
    assert m["meta/task_utility"] == pytest.approx(expected_utility)


def test_no_utility_key_is_skipped(tmp_path):
    logger = ListLogger()
    _trainer(tmp_path, [MetaLoop(inner_steps=1, total_meta_steps=2)], 4, logger=logger).fit(
        GradModel(_grads(4)), _loader(4)
    )
    assert "meta/task_utility" not in logger.metrics and "meta/lr" in logger.metrics


def _adamw_reference(
    grads: torch.Tensor, inner: int, tasks: int, eps: list[float], reset: bool
) -> torch.Tensor:
    """Reptile around torch's AdamW on a bare tensor; ``reset`` builds a fresh optimizer for every task."""
    theta = nn.Parameter(torch.tensor(THETA_0, dtype=torch.float64))
    opt, k = None, 0
    for eps_t in eps:
        anchor, delta_sum = theta.detach().clone(), torch.zeros(2, dtype=torch.float64)
        for _ in range(tasks):
            if opt is None or reset:
                opt = torch.optim.AdamW([theta], lr=LR, weight_decay=0.01)
            for _ in range(inner):
                opt.zero_grad()
                (grads[k] * theta).sum().backward()
                opt.step()
                k += 1
            delta_sum += theta.detach() - anchor
            with torch.no_grad():
                theta.copy_(anchor)
        with torch.no_grad():
            theta.copy_(anchor + eps_t * delta_sum / tasks)
    return theta.detach()


@pytest.mark.parametrize("reset", [False, True])
def test_adamw_optimizer_state_reset(tmp_path, reset):
    inner, tasks, steps = 3, 2, 12
    grads = _grads(steps)
    model, rec = GradModel(grads, optimizer="adamw"), Recorder()
    loop = MetaLoop(inner, tasks, meta_lr=1.5, meta_lr_schedule="constant", reset_optimizer_state=reset)
    _trainer(tmp_path, [rec, loop], steps).fit(model, _loader(steps))

    task_starts = [k for k in range(steps) if k % inner == 0]
    sizes = [rec.state_sizes[k] for k in task_starts]
    # AdamW creates its state in the first step: empty before it; afterwards only a reset empties it.
    assert sizes == ([0, 0, 0, 0] if reset else [0, 1, 1, 1])
    assert all(rec.state_sizes[k] == 1 for k in range(steps) if k % inner)
    assert rec.starts[inner] == rec.starts[0]  # task 2 started from the restored anchor
    expected = _adamw_reference(grads, inner, tasks, [1.5, 1.5], reset)
    torch.testing.assert_close(model.theta.detach(), expected, rtol=0, atol=1e-12)
    other = _adamw_reference(grads, inner, tasks, [1.5, 1.5], not reset)
    assert not torch.allclose(expected, other, atol=1e-6)  # the two settings are distinguishable here


# ------------------------------------------------------------------------------------------- checkpoints
def _fit_by_step(tmp_path, steps, loop, crash_at=None, ckpt_path=None, checkpoint_every_step=False):
    model = GradModel(_grads(steps), optimizer="adamw", by_step=True)
    model.crash_at = crash_at
    callbacks = [loop]
    if checkpoint_every_step:
        callbacks.append(ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=1, save_top_k=-1))
    trainer = _trainer(tmp_path, callbacks, steps, ckpt=checkpoint_every_step)
    if crash_at is not None:
        with pytest.raises(RuntimeError, match="CRASH"):
            trainer.fit(model, _loader(steps))
    else:
        trainer.fit(model, _loader(steps), ckpt_path=ckpt_path)
    return model


@pytest.mark.filterwarnings("ignore:You're resuming from a checkpoint that ended before the epoch ended")
@pytest.mark.filterwarnings("ignore:Be aware that when using `ckpt_path`")
@pytest.mark.parametrize(("crash_at", "reset"), [(1, False), (2, False), (3, False), (4, False), (6, True)])
def test_resume_mid_meta_iteration_is_exact(tmp_path, crash_at, reset):
    inner, tasks, steps = 2, 2, 12  # a meta-iteration is 4 steps: 1 and 3 are mid-task, 2 between tasks
    kw = dict(inner_steps=inner, tasks_per_meta_step=tasks, reset_optimizer_state=reset)
    straight = _fit_by_step(tmp_path / "a", steps, MetaLoop(**kw))
    _fit_by_step(tmp_path / "b", steps, MetaLoop(**kw), crash_at=crash_at + 1, checkpoint_every_step=True)
    ckpt = tmp_path / "b" / "ckpt" / f"epoch=0-step={crash_at}.ckpt"
    resumed = _fit_by_step(tmp_path / "c", steps, MetaLoop(**kw), ckpt_path=ckpt)
    assert torch.equal(resumed.theta, straight.theta)


def test_checkpoint_holds_anchor_and_delta(tmp_path):
    _fit_by_step(tmp_path, 12, MetaLoop(inner_steps=2), crash_at=4, checkpoint_every_step=True)
    theta_0 = torch.tensor(THETA_0, dtype=torch.float64)
    # Step 3 is inside task 2 of meta-iteration 0: the anchor is THETA_0 and delta_sum holds task 1's move.
    state = torch.load(tmp_path / "ckpt" / "epoch=0-step=3.ckpt", weights_only=True)["callbacks"]["MetaLoop"]
    assert set(state["anchor"]) == {"theta"}  # trainable parameters only
    torch.testing.assert_close(state["anchor"]["theta"], theta_0, rtol=0, atol=0)
    counters = (state["iteration"], state["tasks_done"], state["last_step"], state["total_meta_steps"])
    assert counters == (0, 1, 3, 3)
    # After step 2 (the end of task 1) the anchor was restored into the weights ...
    weights = torch.load(tmp_path / "ckpt" / "epoch=0-step=2.ckpt", weights_only=True)["state_dict"]
    torch.testing.assert_close(weights["theta"], theta_0, rtol=0, atol=0)
    # ... and task 1's move (two AdamW steps from THETA_0) is in delta_sum.
    p = nn.Parameter(theta_0.clone())
    opt = torch.optim.AdamW([p], lr=LR, weight_decay=0.01)
    for k in range(2):
        opt.zero_grad()
        (_grads(2)[k] * p).sum().backward()
        opt.step()
    torch.testing.assert_close(state["delta_sum"]["theta"], p.detach() - theta_0, rtol=0, atol=1e-12)


# --------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(inner_steps=0), K + r".inner_steps` must be >= 1; got 0"),
        (
            dict(inner_steps=2, tasks_per_meta_step=0),
            K + r".tasks_per_meta_step` must be >= 1; got 0",
        ),
        (
            dict(inner_steps=2, meta_lr=0.0),
            K + r".meta_lr` must be > 0; got 0.0",
        ),
        (
            dict(inner_steps=2, meta_lr=float("nan")),
            K + r".meta_lr` must be > 0; got nan",
        ),
        (
            dict(inner_steps=2, meta_lr_schedule="cosine"),
            K + r".meta_lr_schedule` must be one of .*'cosine'",
        ),
        (
            dict(inner_steps=2, total_meta_steps=0),
            K + r".total_meta_steps` must be >= 1 or null; got 0",
        ),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MetaLoop(**kwargs)


def test_all_bad_arguments_reported_at_once():
    with pytest.raises(ValueError, match=r"(?s)inner_steps.*tasks_per_meta_step.*meta_lr"):
        MetaLoop(inner_steps=0, tasks_per_meta_step=0, meta_lr=-1.0)


def test_linear_schedule_needs_total():
    with pytest.raises(ValueError, match=r"set " + K + r".total_meta_steps`"):
        MetaLoop(inner_steps=2).meta_lr_at(0)
    assert MetaLoop(inner_steps=2, meta_lr_schedule="constant").meta_lr_at(10**6) == 1.5


@pytest.mark.parametrize(
    ("max_steps", "match"),
    [
        (-1, r"`trainer.max_steps`=-1 does not cover"),
        (3, r"`trainer.max_steps`=3 does not cover one meta-iteration of 4"),
    ],
)
def test_linear_schedule_without_total_or_max_steps(tmp_path, max_steps, match):
    trainer = pl.Trainer(max_steps=max_steps, max_epochs=1, callbacks=[MetaLoop(inner_steps=2)], logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         default_root_dir=tmp_path)  # fmt: skip
    with pytest.raises(ValueError, match=match):
        trainer.fit(GradModel(_grads(4)), _loader(4))


def test_constant_schedule_needs_no_total(tmp_path):
    loop = MetaLoop(inner_steps=2, meta_lr_schedule="constant")
    trainer = pl.Trainer(max_epochs=1, callbacks=[loop], logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         default_root_dir=tmp_path)  # fmt: skip
    trainer.fit(GradModel(_grads(4)), _loader(4))  # 4 steps = one whole meta-iteration
    assert loop._iteration == 1


_no_val_step = pytest.mark.filterwarnings(
    "ignore:You passed in a `val_dataloader` but have no `validation_step`"
)


class _HeldPreferenceData(PreferencePromptDataModule):
    """The real data module, with training batches the gradient model understands."""

    def train_dataloader(self) -> DataLoader:
        return _loader(8)

    def on_before_batch_transfer(self, batch, dataloader_idx):
        return batch


@_no_val_step
@pytest.mark.parametrize(
    ("data_kwargs", "match"),
    [
        (
            dict(steps_per_preference=3),
            r"`data.init_args.steps_per_preference`=3 must equal " + K + r".inner_steps`=4",
        ),
        (
            dict(per_prompt_preferences=True),
            r"`data.init_args.per_prompt_preferences: true`.*set it to false",
        ),
    ],
)
def test_datamodule_must_hold_preference_for_a_task(tmp_path, data_kwargs, match):
    dm = _HeldPreferenceData(ListPrompts(["a", "b", "c"]), batch_size=1, num_eval_prompts=1, **data_kwargs)
    with pytest.raises(ValueError, match=match):
        _trainer(tmp_path, [MetaLoop(inner_steps=4, total_meta_steps=1)], 8).fit(
            GradModel(_grads(8)), datamodule=dm
        )


@_no_val_step
def test_matching_datamodule_is_accepted(tmp_path):
    dm = _HeldPreferenceData(
        ListPrompts(["a", "b", "c"]), batch_size=1, num_eval_prompts=1, steps_per_preference=2
    )
    _trainer(tmp_path, [MetaLoop(inner_steps=2)], 8).fit(GradModel(_grads(8)), datamodule=dm)


def test_stopping_inside_a_meta_iteration_warns(tmp_path):
    # max_steps is refused unless a multiple of a meta-iteration; here the data runs out after 5 steps instead.
    trainer = pl.Trainer(max_steps=-1, max_epochs=1, callbacks=[MetaLoop(inner_steps=2, total_meta_steps=2)],
                         logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path)  # fmt: skip
    with pytest.warns(UserWarning, match=r"training stopped inside meta-iteration 1 \(after 0 of 2 tasks"):
        trainer.fit(GradModel(_grads(5)), _loader(5))


@pytest.mark.parametrize(("max_steps", "advice"), [(5, r"use 4 or 8\."), (2, r"use 4\.")])
def test_max_steps_inside_a_meta_iteration_is_refused_at_setup(tmp_path, max_steps, advice):
    model = GradModel(_grads(8))
    with pytest.raises(
        ValueError, match=rf"`trainer.max_steps`={max_steps} is not a multiple of .* = 4.*{advice}"
    ):
        _trainer(tmp_path, [MetaLoop(inner_steps=2, total_meta_steps=2)], max_steps).fit(model, _loader(8))
    assert torch.equal(
        model.theta.detach(), torch.tensor(THETA_0, dtype=torch.float64)
    )  # refused before step 1


def _mid_iteration_state() -> dict:
    loop = MetaLoop(inner_steps=2, total_meta_steps=3)
    loop._anchor = {"theta": torch.zeros(2)}
    return loop.state_dict()


def test_resume_with_other_task_shape_is_refused():
    with pytest.raises(ValueError, match=r"inner_steps=2 and tasks_per_meta_step=2; resume with the same"):
        MetaLoop(inner_steps=3, total_meta_steps=3).load_state_dict(_mid_iteration_state())


def test_resume_with_other_parameters_is_refused(tmp_path):
    loop = MetaLoop(inner_steps=2, total_meta_steps=3)
    state = _mid_iteration_state()
    state["anchor"] = {"layer.weight": torch.zeros(2)}
    loop.load_state_dict(state)
    with pytest.raises(ValueError, match=r"names parameters the model lacks \(\['layer.weight'\]\)"):
        _trainer(tmp_path, [loop], 4).fit(GradModel(_grads(4)), _loader(4))


def test_resume_schedule_length():
    follows = MetaLoop(inner_steps=2)
    follows._total = 5  # as derived from a changed trainer.max_steps
    with pytest.warns(UserWarning, match=r"follows `trainer.max_steps`: T=5 .*checkpoint's run had T=3"):
        follows.load_state_dict(_mid_iteration_state())
    assert follows.meta_lr_at(1) == pytest.approx(1.2)
    outside_fit = MetaLoop(inner_steps=2)  # nothing derived: the checkpoint's T
    outside_fit.load_state_dict(_mid_iteration_state())
    assert outside_fit.meta_lr_at(1) == pytest.approx(1.0)
    explicit = MetaLoop(inner_steps=2, total_meta_steps=6)
    with pytest.warns(
        UserWarning,
        match=K + r".total_meta_steps`=6 replaces the checkpoint's T=3",
    ):
        explicit.load_state_dict(_mid_iteration_state())
    assert explicit.meta_lr_at(3) == pytest.approx(0.75)


def test_state_dict_round_trip_is_complete():
    loop = MetaLoop(inner_steps=2, total_meta_steps=3)
    loop._iteration, loop._tasks_done, loop._last_step, loop._last_reset_step = 2, 1, 10, 10
    loop._anchor, loop._delta_sum = {"theta": torch.ones(2)}, {"theta": torch.full((2,), 0.5)}
    loop._utility_sum, loop._utility_count = 3.0, 2
    other = MetaLoop(inner_steps=2, total_meta_steps=3)
    other.load_state_dict(copy.deepcopy(loop.state_dict()))
    a, b = loop.state_dict(), other.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], dict):
            assert all(torch.equal(a[key][n], b[key][n]) for n in a[key])
        else:
            assert a[key] == b[key], key
    assert other._check_loaded


# ------------------------------------------------------------------------------------- outer momentum
def momentum_reference(step_grads, inner, tasks, eps, m, nesterov):
    """Plain-python outer SGD with momentum on the pseudo-gradient g = theta_0 - mean_j theta_j."""
    theta, k, buf = list(THETA_0), 0, [0.0, 0.0]
    for eps_t in eps:
        anchor, ends = list(theta), []
        for _ in range(tasks):
            phi = list(anchor)
            for _ in range(inner):
                phi = [x - LR * g for x, g in zip(phi, step_grads[k], strict=True)]
                k += 1
            ends.append(phi)
        g = [a - sum(e[i] for e in ends) / tasks for i, a in enumerate(anchor)]
        buf = [m * b + gi for b, gi in zip(buf, g, strict=True)]  # a zero buffer before the first step
        step = [gi + m * b for gi, b in zip(g, buf, strict=True)] if nesterov else buf
        theta = [a - eps_t * s for a, s in zip(anchor, step, strict=True)]
    return theta


def test_outer_step_hand_worked_two_meta_steps():
    from pareto_lightning.callbacks.reptile import outer_step

    # B = 1, lr 0.5, m 0.5. Step 1: g = 0 - 2 = -2, b = -2, s = g + m b = -3, theta = 0 + 1.5 = 1.5.
    # Step 2 (anchor 1.5, adapted to 2.5): g = -1, b = 0.5 * -2 - 1 = -2, s = -1 - 1 = -2, theta = 2.5.
    theta, buf = outer_step({"x": torch.tensor([0.0])}, {"x": torch.tensor([2.0])}, 1, 0.5, 0.5, True)
    assert theta["x"].item() == 1.5 and buf["x"].item() == -2.0
    theta, buf = outer_step(theta, {"x": torch.tensor([1.0])}, 1, 0.5, 0.5, True, buf)
    assert theta["x"].item() == 2.5 and buf["x"].item() == -2.0
    # Without Nesterov the step is the buffer: 0 + 0.5 * 2 = 1, then 1 + 0.5 * 2 = 2 (b = 0.5 * -2 - 1 = -2).
    theta, buf = outer_step({"x": torch.tensor([0.0])}, {"x": torch.tensor([2.0])}, 1, 0.5, 0.5, False)
    theta, buf = outer_step(theta, {"x": torch.tensor([1.0])}, 1, 0.5, 0.5, False, buf)
    assert theta["x"].item() == 2.0
    # m = 0 keeps no buffer and is Reptile's interpolation theta_0 + lr * delta_sum / B.
    theta, buf = outer_step({"x": torch.tensor([1.0])}, {"x": torch.tensor([3.0])}, 2, 0.5)
    assert theta["x"].item() == 1.75 and buf is None


@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_trajectory_matches_hand_written(tmp_path, nesterov):
    inner, tasks, eps = 2, 2, [0.7, 0.7, 0.7]
    steps = inner * tasks * len(eps)
    grads = _grads(steps)
    expected = momentum_reference(grads.tolist(), inner, tasks, eps, 0.9, nesterov)
    loop = MetaLoop(inner, tasks, meta_lr=0.7, meta_lr_schedule="constant", outer_momentum=0.9,
                    outer_nesterov=nesterov)  # fmt: skip
    model = GradModel(grads)
    _trainer(tmp_path, [loop], steps).fit(model, _loader(steps))
    torch.testing.assert_close(
        model.theta.detach(), torch.tensor(expected, dtype=torch.float64), rtol=0, atol=1e-9
    )
    plain = momentum_reference(grads.tolist(), inner, tasks, eps, 0.0, False)
    assert not torch.allclose(model.theta.detach(), torch.tensor(plain, dtype=torch.float64), atol=1e-3)


@pytest.mark.filterwarnings("ignore:You're resuming from a checkpoint that ended before the epoch ended")
@pytest.mark.filterwarnings("ignore:Be aware that when using `ckpt_path`")
@pytest.mark.parametrize("crash_at", [4, 5, 6, 9])
def test_resume_with_outer_momentum_is_exact(tmp_path, crash_at):
    kw = dict(inner_steps=2, tasks_per_meta_step=2, meta_lr=0.7, outer_momentum=0.9, outer_nesterov=True)
    straight = _fit_by_step(tmp_path / "a", 12, MetaLoop(**kw))
    _fit_by_step(tmp_path / "b", 12, MetaLoop(**kw), crash_at=crash_at + 1, checkpoint_every_step=True)
    ckpt = tmp_path / "b" / "ckpt" / f"epoch=0-step={crash_at}.ckpt"
    state = torch.load(ckpt, weights_only=True)["callbacks"]["MetaLoop"]
    assert state["buffer"] is not None and set(state["buffer"]) == {"theta"}  # after the first meta step
    resumed = _fit_by_step(tmp_path / "c", 12, MetaLoop(**kw), ckpt_path=ckpt)
    assert torch.equal(resumed.theta, straight.theta)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            dict(outer_momentum=1.0),
            K + r".outer_momentum` must be a number in \[0, 1\); got 1.0",
        ),
        (
            dict(outer_momentum=-0.1),
            K + r".outer_momentum` must be a number in \[0, 1\); got -0.1",
        ),
        (
            dict(outer_nesterov=True),
            K + r".outer_nesterov: true` needs " + K + r".outer_momentum` > 0",
        ),
    ],
)
def test_bad_outer_momentum(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MetaLoop(inner_steps=2, **kwargs)


def test_buffer_dropped_without_momentum_warns():
    state = MetaLoop(inner_steps=2, total_meta_steps=3).state_dict()
    state["buffer"] = {"theta": torch.ones(2)}
    loop = MetaLoop(inner_steps=2, total_meta_steps=3)
    with pytest.warns(UserWarning, match=r"outer momentum buffer but " + K + r".outer_momentum` is 0"):
        loop.load_state_dict(state)
    assert loop._buffer is None


def test_parallel_tasks_need_ddp(tmp_path):
    trainer = _trainer(tmp_path, [MetaLoop(inner_steps=2, parallel_tasks=True)], 4)
    with pytest.raises(
        ValueError, match=r"parallel_tasks: true` runs under `trainer.strategy: ddp`; got SingleDevice"
    ):
        trainer.fit(GradModel(_grads(4)), _loader(4))


@pytest.mark.filterwarnings("ignore:You're resuming from a checkpoint that ended before the epoch ended")
def test_a_run_extended_on_resume_learns_with_the_schedule_of_its_new_length(tmp_path):
    grads = _grads(8)
    first, loop = GradModel(grads, by_step=True), MetaLoop(inner_steps=1, tasks_per_meta_step=2)  # T = 4 // 2
    trainer = _trainer(tmp_path / "a", [loop], 4)
    trainer.fit(first, _loader(8))
    trainer.save_checkpoint(tmp_path / "step4.ckpt")
    resumed = GradModel(grads, by_step=True)
    with pytest.warns(UserWarning, match=r"T=4 meta-iterations \(the checkpoint's run had T=2\), so "
                                         r"meta-iterations 2 to 3 get meta_lr \* \(1 - t / 4\)"):
        _trainer(tmp_path / "b", [MetaLoop(inner_steps=1, tasks_per_meta_step=2)], 8).fit(
            resumed, _loader(8), ckpt_path=tmp_path / "step4.ckpt"
        )
    # The first two meta steps ran with T = 2, the last two with T = 4 (a run planned for 8 steps gives them these).
    _, _, final = reptile_reference(grads.tolist(), 1, 2, [1.5, 0.75, 0.75, 0.375])
    torch.testing.assert_close(resumed.theta.detach(), torch.tensor(final, dtype=torch.float64), rtol=0, atol=1e-9)
    assert not torch.equal(resumed.theta, first.theta)


def test_total_meta_steps_below_the_run_is_refused(tmp_path):
    with pytest.raises(ValueError, match=K + r".total_meta_steps`=2 but `trainer.max_steps`=8 runs 4 meta-iterations"
                                          r".*the last 2 would learn nothing"):
        _trainer(tmp_path, [MetaLoop(inner_steps=1, total_meta_steps=2)], 8).fit(GradModel(_grads(8)), _loader(8))


def _validating_trainer(tmp_path, loop, **kwargs):
    return pl.Trainer(accelerator="cpu", max_steps=8, callbacks=[loop], logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
                      num_sanity_val_steps=0, limit_val_batches=1, **kwargs)  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(val_check_interval=3), r"`trainer.val_check_interval`=3 can evaluate inside a meta-iteration .* e.g\. 4"),
        (dict(val_check_interval=4, accumulate_grad_batches=2), r"val_check_interval`=4 .*= 8 training batches"),
        (dict(val_check_interval="00:00:00:01"), r"a time-based `trainer.val_check_interval` \(every 1 s\) can"),
    ],
    ids=["steps", "batches", "time"],
)
def test_an_evaluation_inside_a_meta_iteration_is_refused_at_setup(tmp_path, kwargs, match):
    model = GradModel(_grads(16))
    with pytest.raises(ValueError, match=match):
        _validating_trainer(tmp_path, MetaLoop(inner_steps=2), **kwargs).fit(model, _loader(16), _loader(2))
    assert torch.equal(model.theta.detach(), torch.tensor(THETA_0, dtype=torch.float64))  # before step 1


@pytest.mark.filterwarnings("ignore:You passed in a `val_dataloader` but have no `validation_step`")
def test_an_evaluation_between_meta_iterations_and_fast_dev_run_are_accepted(tmp_path):
    _validating_trainer(tmp_path, MetaLoop(inner_steps=2), val_check_interval=4).fit(
        GradModel(_grads(8)), _loader(8), _loader(2)
    )
    model = GradModel(_grads(8))
    smoke = pl.Trainer(accelerator="cpu", fast_dev_run=True, callbacks=[MetaLoop(inner_steps=2)], logger=False,
                       enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)  # fmt: skip
    with pytest.warns(UserWarning, match=r"training stopped inside meta-iteration 0"):
        smoke.fit(model, _loader(8))
    assert smoke.global_step == 1 and not torch.equal(model.theta.detach(), torch.tensor(THETA_0).double())
