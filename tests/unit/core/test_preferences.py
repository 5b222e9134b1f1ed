import math

import pytest
import torch

from pareto_lightning.preferences import (
    PAPER_EVAL_WEIGHTS,
    DirichletPreferenceSampler,
    mirrored_pairs,
    simplex_grid,
    split_seen_unseen,
    validate_preference,
)


def test_simplex_grid_two_objectives_is_the_paper_training_set():
    grid = simplex_grid(2, 10)
    expected = torch.tensor([[1 - i / 10, i / 10] for i in range(11)], dtype=torch.float64)
    assert torch.allclose(grid, expected, atol=1e-12)


@pytest.mark.parametrize("k,d", [(3, 4), (4, 3), (3, 12)])
def test_simplex_grid_is_the_das_dennis_lattice(k, d):
    grid = simplex_grid(k, d)
    assert grid.shape == (math.comb(d + k - 1, k - 1), k)
    assert torch.allclose(grid.sum(-1), torch.ones(len(grid), dtype=torch.float64))
    scaled = grid * d
    assert torch.allclose(scaled, scaled.round())
    assert len({tuple(r) for r in scaled.round().long().tolist()}) == len(grid)


@pytest.mark.parametrize(
    "args,match", [((0, 10), "num_objectives"), ((2, 0), "divisions"), ((2, 1.5), "divisions")]
)
def test_simplex_grid_rejects_bad_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        simplex_grid(*args)


def test_paper_eval_weights_are_table1():
    assert PAPER_EVAL_WEIGHTS.shape == (28, 2)
    assert PAPER_EVAL_WEIGHTS[0].tolist() == [1.0, 0.0]
    assert PAPER_EVAL_WEIGHTS[-1].tolist() == [0.0, 1.0]
    assert PAPER_EVAL_WEIGHTS[13].tolist() == pytest.approx([0.52, 0.48])  # printed before 0.55 in the table
    assert torch.allclose(PAPER_EVAL_WEIGHTS.sum(-1), torch.ones(28, dtype=torch.float64))


def test_split_seen_unseen_marks_the_bold_rows_of_table1():
    seen = split_seen_unseen(PAPER_EVAL_WEIGHTS, simplex_grid(2, 10))
    firsts = {round(a, 2) for a, s in zip(PAPER_EVAL_WEIGHTS[:, 0].tolist(), seen.tolist(), strict=True) if s}
    assert firsts == {1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0}


def test_split_seen_unseen_rejects_dimension_mismatch():
    with pytest.raises(ValueError, match="objectives"):
        split_seen_unseen(PAPER_EVAL_WEIGHTS, simplex_grid(3, 2))


def test_validate_preference_accepts_batches_and_rejects_off_simplex():
    assert validate_preference(torch.tensor([[0.25, 0.75], [1.0, 0.0]]), 2).shape == (2, 2)
    with pytest.raises(ValueError, match=r"`eval_weights` must have 2 entries.*\[0\.5, 0\.3, 0\.2\]"):
        validate_preference([0.5, 0.3, 0.2], 2, key="eval_weights")
    with pytest.raises(ValueError, match="simplex"):
        validate_preference([1.2, -0.2], 2)
    with pytest.raises(ValueError, match="simplex"):
        validate_preference([0.6, 0.6], 2)
    with pytest.raises(ValueError, match="simplex"):
        validate_preference([float("nan"), 1.0], 2)
    with pytest.raises(ValueError, match="shape"):
        validate_preference(0.5, 2)


def _dirichlet_log_density(w, alpha):
    return sum((a - 1) * math.log(x) for a, x in zip(alpha, w, strict=True))


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0, (0.5, 3.0)])
def test_support_probabilities_follow_the_clipped_dirichlet_density(alpha):
    grid = simplex_grid(2, 10)
    sampler = DirichletPreferenceSampler(2, alpha=alpha, support=grid)
    a = alpha if isinstance(alpha, tuple) else (alpha, alpha)
    eps = 1 / 20
    dens = []
    for w in grid.tolist():
        c = [max(x, eps) for x in w]
        c = [x / sum(c) for x in c]
        dens.append(math.exp(_dirichlet_log_density(c, a)))
    expected = torch.tensor(dens, dtype=torch.float64) / sum(dens)
    assert sampler.epsilon == pytest.approx(eps)
    assert torch.allclose(sampler.probabilities, expected, atol=1e-12)


def test_alpha_shapes_the_support_distribution():
    grid = simplex_grid(2, 10)
    uniform = DirichletPreferenceSampler(2, 1.0, grid).probabilities
    corner = DirichletPreferenceSampler(2, 0.5, grid).probabilities
    middle = DirichletPreferenceSampler(2, 2.0, grid).probabilities
    assert torch.allclose(uniform, torch.full((11,), 1 / 11, dtype=torch.float64))
    assert corner[0] > corner[5] and middle[5] > middle[0]


def test_sampling_frequencies_match_probabilities():
    sampler = DirichletPreferenceSampler(2, 0.5, simplex_grid(2, 10), seed=3)
    draws = sampler.sample(40_000)
    idx = (draws[:, 1] * 10).round().long()
    freq = torch.bincount(idx, minlength=11).double() / len(idx)
    assert torch.allclose(freq, sampler.probabilities, atol=0.01)


@pytest.mark.parametrize("alpha", [(1.0, 1.0, 1.0), (0.5, 2.0, 4.0)])
def test_continuous_sampler_matches_dirichlet_moments(alpha):
    sampler = DirichletPreferenceSampler(3, alpha=alpha, seed=1)
    draws = sampler.sample(50_000)
    a = torch.tensor(alpha, dtype=torch.float64)
    a0 = a.sum()
    assert torch.allclose(draws.sum(-1), torch.ones(len(draws), dtype=torch.float64))
    assert torch.allclose(draws.mean(0), a / a0, atol=0.01)
    var = a * (a0 - a) / (a0**2 * (a0 + 1))
    assert torch.allclose(draws.var(0), var, rtol=0.1, atol=1e-3)
    with pytest.raises(ValueError, match="continuous"):
        _ = sampler.probabilities


def test_state_dict_resumes_the_same_sequence():
    a = DirichletPreferenceSampler(2, 1.0, simplex_grid(2, 10), seed=7)
    a.sample(5)
    state = a.state_dict()
    expected = a.sample(20)
    b = DirichletPreferenceSampler(2, 1.0, simplex_grid(2, 10), seed=99)
    b.load_state_dict(state)
    assert torch.equal(b.sample(20), expected)
    c = DirichletPreferenceSampler(2, 2.0, simplex_grid(2, 10))
    with pytest.raises(ValueError, match="alpha"):
        c.load_state_dict(state)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(num_objectives=1), "num_objectives"),
        (dict(num_objectives=2, alpha=0.0), "alpha"),
        (dict(num_objectives=2, alpha=(1.0, 1.0, 1.0)), "alpha"),
        (dict(num_objectives=2, support=torch.tensor([[0.5, 0.6]])), "support"),
        (dict(num_objectives=2, support=torch.zeros(0, 2)), "support"),
    ],
)
def test_sampler_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DirichletPreferenceSampler(**kwargs)


def test_sample_rejects_bad_count():
    with pytest.raises(ValueError, match="`n`"):
        DirichletPreferenceSampler(2).sample(0)


def test_mirrored_pairs_follow_each_draw_with_its_entries_reversed():
    draws = torch.tensor([[0.5, 0.3, 0.2], [1.0, 0.0, 0.0]])
    expected = torch.tensor([[0.5, 0.3, 0.2], [0.2, 0.3, 0.5], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    assert torch.equal(mirrored_pairs(draws), expected)
    assert mirrored_pairs(torch.zeros(0, 2)).shape == (0, 2)
    with pytest.raises(ValueError, match=r"`draws` must be \[N, K\]"):
        mirrored_pairs(torch.tensor([0.5, 0.5]))
