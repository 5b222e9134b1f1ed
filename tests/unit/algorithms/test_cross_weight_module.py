"""`GRPOModule(cross_weight=...)` with `PreferencePromptDataModule(weights_per_prompt=...)`: each prompt answered
under several weights in one step, and the advantages compare its completions across them."""

import lightning.pytorch as pl
import pytest
import torch

from pareto_lightning import GRPOModule, ListPrompts, PreferencePromptDataModule, WeightedSum
from pareto_lightning.losses.cross_weight import cross_weight_advantages, prompt_index
from pareto_lightning.losses.grpo import group_advantages
from pareto_lightning.tasks import LexiconTask

PROMPTS = ListPrompts(
    [
        "write a note about the river",
        "describe the city",
        "hi",
        "write about the sea",
        "tell me of hills",
        "a song",
    ]
)


def _data(**kw):
    return PreferencePromptDataModule(PROMPTS, batch_size=2, num_eval_prompts=1, **kw)


def _fit(tmp_path, module, dm):
    trainer = pl.Trainer(max_steps=1, accelerator="cpu", logger=False, enable_progress_bar=False,
                         enable_model_summary=False, enable_checkpointing=False, limit_val_batches=0,
                         default_root_dir=tmp_path)  # fmt: skip
    trainer.fit(module, dm)


def _module(**kw):
    torch.manual_seed(0)
    task = LexiconTask()
    return GRPOModule(
        task.policy(max_new_tokens=4), task.reward(), WeightedSum(), num_generations=2, beta=0.0, **kw
    )


def test_each_prompt_gets_consecutive_rows_each_under_its_own_weight():
    dm = _data(per_prompt_preferences=True, weights_per_prompt=3)
    dm.setup("fit")
    batches = [dm.next_train_batch() for _ in range(4)]
    for batch in batches:
        prompts = batch["prompts"]
        assert len(prompts) == 6 and batch["weights"].shape == (6, 2)
        assert prompts[0:3] == [prompts[0]] * 3 and prompts[3:6] == [prompts[3]] * 3
    weights = torch.cat([b["weights"] for b in batches])  # [24, 2]
    assert len({tuple(w.tolist()) for w in weights}) > 2  # drawn per row, not once per prompt
    assert not all(torch.equal(w[0], w[1]) for w in weights.view(-1, 3, 2))


def test_mirrored_weights_pair_every_draw_with_its_mirror_and_keep_the_grid_distribution():
    dm = _data(per_prompt_preferences=True, weights_per_prompt=4, mirror_weights=True)
    dm.setup("fit")
    batches = [dm.next_train_batch() for _ in range(300)]
    weights = torch.cat([b["weights"] for b in batches]).view(-1, 2, 2)  # [pairs, (w, mirror), K]
    assert all(b["prompts"][0:4] == [b["prompts"][0]] * 4 for b in batches)  # a prompt's 4 rows in a row
    assert torch.equal(weights[:, 1], weights[:, 0].flip(-1))  # (a, 1 - a) then (1 - a, a)
    grid = {round(i / 10, 6) for i in range(11)}
    firsts = weights[:, 0, 0]
    assert {round(v, 6) for v in firsts.tolist()} == grid  # draws from the 11 training weights, all of them
    # alpha 1 is uniform on the grid: each of the 11 points about 1/11 of the 1200 draws (std about 10)
    counts = torch.bincount((firsts * 10).round().long(), minlength=11)
    assert counts.min() > 1200 / 11 - 45 and counts.max() < 1200 / 11 + 45
    prompt_means = weights.view(-1, 2, 2, 2).mean((1, 2))  # [prompts, K]: every prompt's mean weight
    assert torch.allclose(prompt_means, torch.full_like(prompt_means, 0.5))


def test_mirrored_weights_on_three_objectives_and_the_continuous_simplex():
    dm = PreferencePromptDataModule(PROMPTS, num_objectives=3, batch_size=2, num_eval_prompts=1,
                                    eval_weights="lattice", grid_divisions=None, alpha=[2.0, 1.0, 2.0],
                                    per_prompt_preferences=True, weights_per_prompt=2, mirror_weights=True)  # fmt: skip
    dm.setup("fit")
    weights = torch.cat([dm.next_train_batch()["weights"] for _ in range(50)]).view(-1, 2, 3)
    assert torch.equal(weights[:, 1], weights[:, 0].flip(-1))
    assert torch.allclose(weights.sum(-1), torch.ones(100, 2))
    assert len({tuple(w) for w in weights[:, 0].tolist()}) == 100  # continuous draws, no grid


def test_mirrored_weights_resume_the_same_stream():
    dm = _data(per_prompt_preferences=True, weights_per_prompt=2, mirror_weights=True)
    dm.setup("fit")
    dm.next_train_batch()
    state = dm.state_dict()
    expected = [dm.next_train_batch()["weights"] for _ in range(5)]
    fresh = _data(per_prompt_preferences=True, weights_per_prompt=2, mirror_weights=True, seed=7)
    fresh.setup("fit")
    fresh.load_state_dict(state)
    assert all(torch.equal(a, fresh.next_train_batch()["weights"]) for a in expected)


@pytest.mark.parametrize(
    ("kw", "match"),
    [(dict(per_prompt_preferences=True, weights_per_prompt=3, mirror_weights=True),
      r"`data.init_args.mirror_weights`: pairs each drawn weight with its mirror, so it needs an even "
      r"`data.init_args.weights_per_prompt` \(2, 4, ...\); got 3"),
     (dict(per_prompt_preferences=True, weights_per_prompt=2, mirror_weights=True, alpha=[1.0, 2.0]),
      r"`data.init_args.mirror_weights: true` needs a `data.init_args.alpha` that reads the same reversed.*"
      r"got \[1.0, 2.0\]"),
     (dict(per_prompt_preferences=True, weights_per_prompt=2, mirror_weights=True, alpha=torch.tensor([1.0, 3.0])),
      r"needs a `data.init_args.alpha` that reads the same reversed.*got \[1.0, 3.0\]"),
     (dict(per_prompt_preferences=True, weights_per_prompt=2, mirror_weights=True, alpha=[1.0, -1.0]),
      r"`data.init_args.alpha` must be a positive float")],
)  # fmt: skip
def test_mirrored_weights_out_of_range_are_refused_by_their_key(kw, match):
    with pytest.raises(ValueError, match=match):
        _data(**kw)


@pytest.mark.parametrize(
    ("kw", "match"),
    [(dict(weights_per_prompt=2), r"`data.init_args.weights_per_prompt`: 2 weights for each prompt need "
                                  r"`data.init_args.per_prompt_preferences: true`"),
     (dict(weights_per_prompt=0, per_prompt_preferences=True),
      r"`data.init_args.weights_per_prompt`: must be an integer >= 1; got 0")],
)  # fmt: skip
def test_weights_per_prompt_out_of_range_is_refused_by_its_key(kw, match):
    with pytest.raises(ValueError, match=match):
        _data(**kw)


@pytest.mark.parametrize("value", [-0.5, float("nan"), float("inf"), True])
def test_a_cross_weight_that_is_not_a_finite_float_at_least_0_is_refused(value):
    with pytest.raises(ValueError, match=r"`model.init_args.cross_weight` must be a finite float >= 0"):
        _module(cross_weight=value)


def test_a_cross_weight_with_one_weight_per_prompt_is_refused_before_training(tmp_path):
    module = _module(cross_weight=1.0)
    calls = []
    module.policy.generate = lambda *a, **k: calls.append(a)
    with pytest.raises(
        ValueError,
        match=r"`model.init_args.cross_weight: 1.0`.*`data.init_args.weights_per_prompt` "
        r"is 1.*Set `data.init_args.weights_per_prompt: 2`",
    ):
        _fit(tmp_path, module, _data(per_prompt_preferences=True))
    assert not calls  # refused at setup, before any rollout


@pytest.mark.parametrize(("strength", "scale"), [(0.0, "group"), (0.5, "group"), (0.5, "none")])
def test_the_advantages_add_the_cross_weight_term_to_the_group_ones(tmp_path, strength, scale):
    module = _module(cross_weight=strength, advantage_scale=scale)
    seen = []
    compute = module.compute_loss

    def recording(rollout, utilities, first, rewards):
        out = compute(rollout, utilities, first, rewards)
        seen.append((rollout, utilities, rewards, out[2].advantages))
        return out

    module.compute_loss = recording
    _fit(tmp_path, module, _data(per_prompt_preferences=True, weights_per_prompt=2))
    rollout, utilities, rewards, advantages = seen[0]
    assert len(set(rollout.prompts)) == 2 and len(rollout) == 8  # 2 prompts x 2 weights x 2 completions
    across = cross_weight_advantages(rewards, rollout.weights, prompt_index(rollout.prompts), scale)
    assert across.abs().max() > 0  # the term is not zero on this rollout, so the test can tell
    torch.testing.assert_close(utilities, (rewards * rollout.weights).sum(-1))
    torch.testing.assert_close(advantages, group_advantages(utilities, 2, scale) + strength * across)
