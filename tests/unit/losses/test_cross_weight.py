"""The cross-weight advantage (pareto_lightning.losses.cross_weight) against values worked out by hand."""

import itertools

import pytest
import torch

from pareto_lightning.losses.cross_weight import cross_weight_advantages, prompt_index


def test_two_mirrored_weights_by_hand():
    # Prompt 0 under (0.8, 0.2) and (0.2, 0.8), two completions each; prompt 1 under one weight only.
    # Prompt 0: mean w = (0.5, 0.5); mean r = ((0.9 + 0.7 + 0.3 + 0.1) / 4, (0.1 + 0.3 + 0.7 + 0.5) / 4) = (0.5, 0.4).
    r = torch.tensor([[0.9, 0.1], [0.7, 0.3], [0.3, 0.7], [0.1, 0.5], [0.5, 0.5]])
    w = torch.tensor([[0.8, 0.2], [0.8, 0.2], [0.2, 0.8], [0.2, 0.8], [1.0, 0.0]])
    c = cross_weight_advantages(r, w, torch.tensor([0, 0, 0, 0, 1]), scale="none")
    # row 0: 0.3 * 0.4 + (-0.3) * (-0.3) = 0.21; row 1: 0.3 * 0.2 + (-0.3) * (-0.1) = 0.09
    # row 2: (-0.3) * (-0.2) + 0.3 * 0.3 = 0.15;  row 3: (-0.3) * (-0.4) + 0.3 * 0.1 = 0.15; row 4: one weight: 0
    torch.testing.assert_close(c, torch.tensor([0.21, 0.09, 0.15, 0.15, 0.0]))


def test_a_prompt_that_leans_the_wrong_way_gets_negative_terms():
    # The simplicity-weighted answer is the technical one: both rows are pushed down.
    r = torch.tensor([[0.2, 0.8], [0.8, 0.2]])
    w = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    c = cross_weight_advantages(r, w, torch.tensor([0, 0]), scale="none")
    torch.testing.assert_close(c, torch.tensor([-0.3, -0.3]))  # 0.5 * (-0.3) + (-0.5) * 0.3, twice


def test_the_terms_average_to_each_prompts_covariance():
    # An independent reference: the population covariance of w_k and r_k over one prompt's rows, summed over k.
    g = torch.Generator().manual_seed(3)
    r, w = (
        torch.rand(9, 3, generator=g, dtype=torch.float64),
        torch.rand(9, 3, generator=g, dtype=torch.float64),
    )
    prompts = torch.tensor([0, 1, 0, 2, 1, 0, 2, 2, 1])
    c = cross_weight_advantages(r, w, prompts, scale="none")
    for p in range(3):
        rows = [i for i in range(9) if prompts[i] == p]
        cov = sum(
            sum((w[i, k] - w[rows, k].mean()) * (r[i, k] - r[rows, k].mean()) for i in rows) / len(rows)
            for k in range(3)
        )
        torch.testing.assert_close(c[rows].mean(), cov)


def test_batch_and_group_scale_divide_by_the_root_mean_square():
    r = torch.tensor([[0.9, 0.1], [0.7, 0.3], [0.3, 0.7], [0.1, 0.5]])
    w = torch.tensor([[0.8, 0.2], [0.8, 0.2], [0.2, 0.8], [0.2, 0.8]])
    rms = ((0.21**2 + 0.09**2 + 0.15**2 + 0.15**2) / 4) ** 0.5  # 0.1559
    expected = torch.tensor([0.21, 0.09, 0.15, 0.15]) / (rms + 1e-4)
    for scale in ("batch", "group"):
        torch.testing.assert_close(
            cross_weight_advantages(r, w, torch.zeros(4, dtype=torch.long), scale), expected
        )


def test_equal_terms_stay_finite_and_one_weight_per_prompt_gives_zeros():
    # Two rows of one prompt under mirrored weights always share one value: a std of 0 must not blow it up.
    r, w = torch.tensor([[0.9, 0.1], [0.3, 0.7]]), torch.tensor([[0.8, 0.2], [0.2, 0.8]])
    c = cross_weight_advantages(r, w, torch.tensor([0, 0]))
    torch.testing.assert_close(c, torch.tensor([0.18, 0.18]) / (0.18 + 1e-4))
    assert cross_weight_advantages(r, w, torch.tensor([0, 1])).eq(0).all()


def test_no_rows_give_no_advantages_and_bfloat16_rewards_are_summed_in_float32():
    assert cross_weight_advantages(
        torch.zeros(0, 2), torch.zeros(0, 2), torch.zeros(0, dtype=torch.long)
    ).shape == (0,)
    r = torch.tensor([[0.9, 0.1], [0.7, 0.3], [0.3, 0.7], [0.1, 0.5]])
    w = torch.tensor([[0.8, 0.2], [0.8, 0.2], [0.2, 0.8], [0.2, 0.8]])
    low = cross_weight_advantages(r.bfloat16(), w.bfloat16(), torch.zeros(4, dtype=torch.long), "none")
    assert low.dtype == torch.float32
    torch.testing.assert_close(low, torch.tensor([0.21, 0.09, 0.15, 0.15]), atol=5e-3, rtol=0)  # bf16 inputs


def test_prompt_index_numbers_prompts_by_first_appearance():
    assert prompt_index(["b", "a", "b", "c", "a"]).tolist() == [0, 1, 0, 2, 1]


@pytest.mark.parametrize(
    ("shapes", "scale", "match"),
    [(((4, 2), (4, 3), (4,)), "batch", r"\[N, K\]"), (((4, 2), (4, 2), (3,)), "batch", r"prompts \[N\]"),
     (((4, 2), (4, 2), (4,)), "std", "`scale` must be")],
)  # fmt: skip
def test_mismatched_shapes_and_unknown_scales_are_refused(shapes, scale, match):
    (rs, ws, ps) = shapes
    with pytest.raises(ValueError, match=match):
        cross_weight_advantages(torch.rand(rs), torch.rand(ws), torch.zeros(ps, dtype=torch.long), scale)


def test_as_advantages_the_terms_follow_the_gradient_of_the_prompts_covariance():
    # A one-prompt "policy" choosing among 3 answers with rewards R [3, 2], one logit row per weight, n = 2 rows.
    # The expectation of mean_i c_i * grad log pi(y_i), summed exactly over every (answer under w_a, answer under
    # w_b), is (1 - 1/n) times autograd's gradient of the expected covariance: the prompt's mean reward, used as
    # the baseline, holds a 1/n share of each row's own reward.
    R = torch.tensor([[0.9, 0.1], [0.5, 0.5], [0.1, 0.9]], dtype=torch.float64)
    W = torch.tensor([[0.9, 0.1], [0.1, 0.9]], dtype=torch.float64)
    logits = torch.tensor([[0.2, 0.0, -0.1], [0.0, 0.3, 0.1]], dtype=torch.float64, requires_grad=True)

    def expected_cov(z):
        p = torch.softmax(z, -1)
        total = 0.0
        for a, b in itertools.product(range(3), repeat=2):
            rows = torch.stack([R[a], R[b]])
            total = (
                total
                + p[0, a] * p[1, b] * cross_weight_advantages(rows, W, torch.tensor([0, 0]), "none").mean()
            )
        return total

    exact = torch.autograd.grad(expected_cov(logits), logits)[0]
    p = torch.softmax(logits.detach(), -1)
    estimate = torch.zeros_like(exact)
    for a, b in itertools.product(range(3), repeat=2):
        c = cross_weight_advantages(torch.stack([R[a], R[b]]), W, torch.tensor([0, 0]), "none")
        prob = p[0, a] * p[1, b]
        for row, (choice, lp) in enumerate(((a, 0), (b, 1))):
            score = -p[lp].clone()
            score[choice] += 1.0  # grad of log softmax at the chosen answer
            estimate[lp] += prob * c[row] * score / 2  # the mean over the prompt's 2 rows
    torch.testing.assert_close(estimate, (1 - 1 / 2) * exact)
