"""Per-prompt steerability (functional) and the per-(prompt, weight) sweep metric, on hand-worked values and scipy."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.stats
import torch

from pareto_lightning.metrics import PromptSweep
from pareto_lightning.metrics.functional import prompt_spearman, prompt_steerability
from pareto_lightning.preferences import PAPER_EVAL_WEIGHTS

NAN = float("nan")
W3 = torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])


def test_hand_worked_three_prompts() -> None:
    r = torch.tensor([
        [[0.9, 0.1], [0.5, 0.5], [0.1, 0.9]],  # follows w: +1, +1
        [[0.5, 0.2], [0.5, 0.4], [0.5, 0.3]],  # r_1 constant: undefined -> 0; r_2 ranks 1, 3, 2: 1 - 6*2/24 = 0.5
        [[0.1, 0.9], [0.5, 0.5], [0.9, 0.1]],  # backwards: -1, -1
    ])  # fmt: skip
    s = prompt_steerability(r, W3)
    torch.testing.assert_close(
        s.per_prompt, torch.tensor([[1.0, 1.0], [0.0, 0.5], [-1.0, -1.0]], dtype=torch.float64)
    )
    # > 0.5 is strict: only the first prompt steers either objective.
    assert s.fraction.dtype == torch.float64 and s.fraction.tolist() == [
        1 / 3,
        1 / 3,
    ]  # exact, not via float32
    torch.testing.assert_close(s.median, torch.tensor([0.0, 0.5], dtype=torch.float64))
    # A lower threshold counts the second prompt's 0.5 for objective 2.
    torch.testing.assert_close(prompt_steerability(r, W3, threshold=0.4).fraction[1].item(), 2 / 3)


def test_ties_take_average_ranks_hand_worked() -> None:
    w1 = torch.tensor([1.0, 0.75, 0.5, 0.25, 0.0])
    w = torch.stack([w1, 1 - w1], -1)  # [5, 2]
    # r_1 against w_1 (ranks 5, 4, 3, 2, 1): r_1 ranks 5, 4, 2.5, 2.5, 1 (0.3 twice)
    # dx = 2, 1, 0, -1, -2; dy = 2, 1, -0.5, -0.5, -2: sum dx dy = 4 + 1 + 0 + 0.5 + 4 = 9.5
    # sum dx^2 = 10, sum dy^2 = 4 + 1 + 0.25 + 0.25 + 4 = 9.5: rho = 9.5 / sqrt(95)
    r = torch.tensor([[[0.8, 0.0], [0.6, 0.1], [0.3, 0.2], [0.3, 0.3], [0.1, 0.4]]])  # [1, 5, 2]
    rho = prompt_spearman(r, w)
    assert rho[0, 0].item() == pytest.approx(9.5 / math.sqrt(95))
    assert rho[0, 1].item() == pytest.approx(1.0)


def test_matches_scipy_on_the_table1_sweep_with_ties_and_constant_prompts() -> None:
    g = torch.Generator().manual_seed(3)
    w = PAPER_EVAL_WEIGHTS  # [28, 2]
    # Rewards on a coarse grid (many ties) that follow w more or less; prompt 4's r_1 and prompt 7's both are constant.
    noise = torch.randint(-4, 5, (40, 28, 2), generator=g).double() / 10
    r = ((w[None] * torch.rand(40, 1, 2, generator=g, dtype=torch.float64) * 3 + noise) * 5).round() / 5
    r[4, :, 0] = 0.3
    r[7] = 0.6
    s = prompt_steerability(r, w)
    expected = np.zeros((40, 2))
    for p in range(40):
        for k in range(2):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", scipy.stats.ConstantInputWarning)
                rho = scipy.stats.spearmanr(w[:, k].numpy(), r[p, :, k].numpy()).statistic
            expected[p, k] = (
                0.0 if np.isnan(rho) else rho
            )  # scipy: NaN for a constant side; counted as 0 here
    np.testing.assert_allclose(s.per_prompt.numpy(), expected, atol=1e-12)
    np.testing.assert_allclose(s.fraction.numpy(), (expected > 0.5).mean(0), atol=1e-12)
    np.testing.assert_allclose(s.median.numpy(), np.median(expected, axis=0), atol=1e-12)
    assert s.per_prompt[4, 0] == 0 and (s.per_prompt[7] == 0).all()
    assert 0.2 < s.fraction.min() and s.fraction.max() < 0.9  # prompts on both sides of the threshold


def test_even_number_of_prompts_takes_the_mean_of_the_two_middle_values() -> None:
    w1 = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0])
    w = torch.stack([w1, 1 - w1], -1)
    up, down = torch.stack([w1, 1 - w1], -1), torch.stack([1 - w1, w1], -1)  # rho +1, -1 per objective
    flat = torch.full((5, 2), 0.5)  # constant: 0
    r = torch.stack([up, up, flat, down])  # [4, 5, 2]: rho 1, 1, 0, -1
    s = prompt_steerability(r, w)
    assert s.median.tolist() == [0.5, 0.5]  # (0 + 1) / 2, not torch.median's lower middle 0
    assert s.fraction.tolist() == [0.5, 0.5]


def test_partial_sweep_leaves_out_pairs_and_prompts_not_evaluated() -> None:
    w1 = torch.tensor([1.0, 0.8, 0.5, 0.2, 0.0])
    w = torch.stack([w1, 1 - w1], -1)
    r = torch.stack([w, w.flip(-1), w]).clone()  # [3, 5, 2]: +1, -1, +1 per objective
    r[0, 3:] = NAN  # prompt 0: weights 0..2 only, still +1
    r[1, 1:] = NAN  # prompt 1: one weight: undefined -> 0
    r[2] = NAN  # prompt 2: never evaluated -> NaN, out of fraction and median
    s = prompt_steerability(r, w)
    assert s.per_prompt[0].tolist() == [1.0, 1.0] and s.per_prompt[1].tolist() == [0.0, 0.0]
    assert s.per_prompt[2].isnan().all()
    assert s.fraction.tolist() == [0.5, 0.5] and s.median.tolist() == [0.5, 0.5]
    none = prompt_steerability(torch.full((2, 5, 2), NAN), w)
    assert none.fraction.isnan().all() and none.median.isnan().all()
    empty = prompt_steerability(torch.zeros(2, 0, 2), torch.zeros(0, 2))  # a split with no weight
    assert empty.fraction.isnan().all() and empty.median.isnan().all()


@pytest.mark.parametrize(
    ("rewards", "weights", "kwargs", "match"),
    [
        (torch.zeros(3, 2), W3, {}, r"`rewards` must be \[P, W, K\].*got \(3, 2\) and \(3, 2\)"),
        (torch.zeros(1, 4, 2), W3, {}, r"same W and K; got \(1, 4, 2\) and \(3, 2\)"),
        (
            torch.full((1, 3, 2), math.inf),
            W3,
            {},
            r"`rewards` must be finite or NaN \(not evaluated\); got 6",
        ),
        (torch.zeros(1, 3, 2), W3 * NAN, {}, r"`weights` must be finite"),
        (torch.zeros(1, 3, 2), W3, {"threshold": 1.0}, r"`threshold` must be a number in \[-1, 1\); got 1.0"),
        (torch.zeros(1, 3, 2), W3, {"threshold": True}, r"`threshold` must be a number"),
    ],
)
def test_errors(rewards, weights, kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        prompt_steerability(rewards, weights, **kwargs)


# ---------------------------------------------------------------- PromptSweep


def test_prompt_sweep_matches_a_loop_over_rows() -> None:
    g = torch.Generator().manual_seed(0)
    prompt_index = torch.tensor([0, 2, 2, 1, 2, 0, 0])
    weight_index = torch.tensor([1, 0, 0, 1, 1, 1, 0])
    rewards = torch.rand(7, 3, 2, generator=g, dtype=torch.float64)  # [rows, G, K]
    sweep = PromptSweep(num_prompts=4, num_weights=2, num_objectives=2)
    sweep.update(prompt_index[:3], weight_index[:3], rewards[:3])
    sweep.update(prompt_index[3:], weight_index[3:], rewards[3:])
    means = sweep.compute()  # [4, 2, 2]
    for p in range(4):
        for m in range(2):
            rows = [i for i in range(7) if prompt_index[i] == p and weight_index[i] == m]
            if rows:
                torch.testing.assert_close(means[p, m], sum(rewards[i].mean(0) for i in rows) / len(rows))
            else:
                assert means[p, m].isnan().all()
    assert means[3].isnan().all()  # prompt 3 never seen


def test_prompt_sweep_one_completion_per_row_and_reset() -> None:
    sweep = PromptSweep(1, 2, 2)
    sweep.update(torch.tensor([0]), torch.tensor([1]), torch.tensor([[0.2, 0.4]]))  # [b, K]
    assert sweep.compute()[0, 1].tolist() == pytest.approx([0.2, 0.4])
    sweep.reset()
    assert sweep.count.sum() == 0 and sweep.reward_sum.abs().sum() == 0


def test_prompt_sweep_errors() -> None:
    with pytest.raises(ValueError, match=r"`num_prompts` must be an integer >= 1; got 0"):
        PromptSweep(0, 2, 2)
    with pytest.raises(ValueError, match=r"`num_objectives` must be an integer >= 1; got 1.5"):
        PromptSweep(1, 2, 1.5)
    sweep = PromptSweep(2, 2, 2)
    with pytest.raises(
        ValueError, match=r"`rewards` must be \[b, G, K=2\] with b = .* = 1; got rewards \(1, 1, 3\)"
    ):
        sweep.update(torch.tensor([0]), torch.tensor([0]), torch.zeros(1, 1, 3))
    with pytest.raises(ValueError, match=r"got rewards \(1, 1, 2\) and 2 weight indices"):
        sweep.update(torch.tensor([0]), torch.tensor([0, 1]), torch.zeros(1, 1, 2))
    with pytest.raises(
        ValueError, match=r"prompt indices must lie in \[0, 2\) and weight indices in \[0, 2\)"
    ):
        sweep.update(torch.tensor([2]), torch.tensor([0]), torch.zeros(1, 2))
    with pytest.raises(ValueError, match=r"must be finite"):
        sweep.update(torch.tensor([0]), torch.tensor([0]), torch.tensor([[NAN, 0.0]]))
