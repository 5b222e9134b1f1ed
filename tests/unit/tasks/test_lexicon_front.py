"""The lexicon task's exact front and oracles against brute-force enumeration and hand-worked values."""

import itertools
import math

import pytest
import torch

from pareto_lightning.tasks import LexiconTask, count_vectors


def brute_points(k: int, words: int, kappa: float) -> list[tuple[float, ...]]:
    """Every reward vector of every count vector with sum <= words, by a plain loop."""
    points = []
    for counts in itertools.product(range(words + 1), repeat=k):
        if sum(counts) <= words:
            points.append(tuple((c / words) ** kappa for c in counts))
    return points


def brute_front(points: list[tuple[float, ...]]) -> set[tuple[float, ...]]:
    """The non-dominated points by the naive O(n^2) definition."""
    front = set()
    for p in points:
        dominated = any(
            all(qi >= pi for qi, pi in zip(q, p, strict=True))
            and any(qi > pi for qi, pi in zip(q, p, strict=True))
            for q in points
        )
        if not dominated:
            front.add(p)
    return front


def brute_shortfall(r: tuple[float, ...], w: list[float], mu: float, z: float) -> float:
    terms = [wi * (z - ri) / mu for wi, ri in zip(w, r, strict=True)]
    top = max(terms)
    return mu * (top + math.log(sum(math.exp(t - top) for t in terms)))


def as_set(t: torch.Tensor) -> set[tuple[float, ...]]:
    return {tuple(round(v, 12) for v in row) for row in t.tolist()}


def rounded(points) -> set[tuple[float, ...]]:
    return {tuple(round(v, 12) for v in p) for p in points}


@pytest.mark.parametrize(("k", "words", "kappa"), [(2, 16, 1.5), (3, 16, 1.5), (2, 5, 0.5), (3, 4, 2.0)])
def test_front_and_achievable_match_brute_force(k, words, kappa):
    task = LexiconTask(num_objectives=k, completion_words=words, kappa=kappa)
    points = brute_points(k, words, kappa)
    achievable, front = task.achievable_points(), task.exact_front()
    assert achievable.dtype == front.dtype == torch.float64
    assert len(achievable) == len(points) == math.comb(words + k, k)
    assert as_set(achievable) == rounded(points)
    assert len(front) == math.comb(words + k - 1, k - 1)
    assert as_set(front) == rounded(brute_front(points))
    # Sorted by the first objective, descending.
    assert (front[1:, 0] <= front[:-1, 0]).all()


@pytest.mark.parametrize(("k", "words", "kappa"), [(2, 16, 1.5), (3, 16, 1.5), (3, 6, 3.0)])
@pytest.mark.parametrize(("mu", "z"), [(0.1, 1.0), (0.02, 1.2)])
def test_oracle_matches_brute_force(k, words, kappa, mu, z):
    task = LexiconTask(num_objectives=k, completion_words=words, kappa=kappa)
    points = brute_points(k, words, kappa)
    gen = torch.Generator().manual_seed(0)
    raw = torch.rand(12, k, generator=gen, dtype=torch.float64)
    weights = torch.cat([raw / raw.sum(-1, keepdim=True), torch.eye(k, dtype=torch.float64)])  # [15, K]
    best_pts = task.oracle_points(weights, mu=mu, ideal_point=z)
    best_val = task.oracle_shortfall(weights, mu=mu, ideal_point=z)
    assert best_pts.shape == (len(weights), k) and best_val.shape == (len(weights),)
    for w, pt, val in zip(weights.tolist(), best_pts.tolist(), best_val.tolist(), strict=True):
        reference = min(brute_shortfall(p, w, mu, z) for p in points)
        assert val == pytest.approx(reference, abs=1e-12)
        assert brute_shortfall(tuple(pt), w, mu, z) == pytest.approx(reference, abs=1e-12)
    # The optimum lies on the exact front (checked against the brute-force front above).
    assert as_set(best_pts) <= as_set(task.exact_front())


def test_hand_values_two_objectives():
    task = LexiconTask()
    front = task.exact_front()
    assert front.shape == (17, 2)
    assert front[0].tolist() == [1.0, 0.0] and front[-1].tolist() == [0.0, 1.0]
    middle = front[8].tolist()  # 8 words of each lexicon: 0.5 ** 1.5
    assert middle == pytest.approx([0.35355339, 0.35355339], abs=1e-8)
    # Below the straight line r1 + r2 = 1: the front is non-convex.
    assert sum(middle) < 1.0
    assert task.oracle_points([[0.5, 0.5]])[0].tolist() == pytest.approx([0.5**1.5, 0.5**1.5])
    # Shortfall of the corner at w = (1, 0): mu * log(exp(0) + exp(0)).
    assert task.oracle_shortfall([[1.0, 0.0]]).item() == pytest.approx(0.1 * math.log(2))


def test_linear_oracle_is_a_corner_while_smooth_tchebycheff_moves_monotonically():
    task = LexiconTask()
    w1 = torch.linspace(0, 1, 41, dtype=torch.float64)
    weights = torch.stack([w1, 1 - w1], dim=1)  # [41, 2]
    corners = {(1.0, 0.0), (0.0, 1.0)}
    linear = task.linear_oracle_points(weights)
    assert all(tuple(p) in corners for p in linear.tolist())
    assert tuple(linear[0].tolist()) == (0.0, 1.0) and tuple(linear[-1].tolist()) == (1.0, 0.0)
    stch = task.oracle_points(weights)
    first = stch[:, 0]
    assert (first[1:] >= first[:-1]).all()  # more weight on helpfulness never lowers it
    interior = [(p[0] > 0) and (p[1] > 0) for p in stch.tolist()]
    assert sum(interior) >= 5  # the optimum passes through the interior of the front
    assert tuple(stch[0].tolist()) == (0.0, 1.0) and tuple(stch[-1].tolist()) == (1.0, 0.0)


def test_linear_oracle_against_brute_force_three_objectives():
    task = LexiconTask(num_objectives=3, completion_words=6)
    points = brute_points(3, 6, 1.5)
    weights = [[0.2, 0.3, 0.5], [0.6, 0.3, 0.1], [0.34, 0.33, 0.33]]
    got = task.linear_oracle_points(weights)
    for w, p in zip(weights, got.tolist(), strict=True):
        best = max(sum(wi * ri for wi, ri in zip(w, r, strict=True)) for r in points)
        assert sum(wi * ri for wi, ri in zip(w, p, strict=True)) == pytest.approx(best)
        assert sorted(p) == [0.0, 0.0, 1.0]  # a corner


def test_linear_kappa_one_front_is_the_simplex():
    front = LexiconTask(completion_words=4, kappa=1.0).exact_front()
    assert front.sum(-1).tolist() == pytest.approx([1.0] * 5)


def test_count_vectors_order_and_exact():
    assert count_vectors(3, 1, exact=True).tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    assert count_vectors(2, 2).tolist() == [[2, 0], [1, 1], [1, 0], [0, 2], [0, 1], [0, 0]]


def test_single_weight_vector_and_float32_weights():
    task = LexiconTask()
    one = task.oracle_points(torch.tensor([0.5, 0.5]))
    assert one.shape == (2,) and one.dtype == torch.float64
    assert task.oracle_shortfall(torch.tensor([[0.25, 0.75]], dtype=torch.float32)).dtype == torch.float64


def test_task_parts_follow_num_objectives():
    task = LexiconTask(num_objectives=3, completion_words=8, kappa=2.0)
    assert task.objective_names == ("helpfulness", "harmlessness", "honesty")
    fns = task.reward_functions()
    assert [f.index for f in fns] == [0, 1, 2]
    assert all(f.completion_words == 8 and f.kappa == 2.0 for f in fns)
    assert "LexiconTask(num_objectives=3" in repr(task)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_objectives": 4}, "`num_objectives` must be 2 or 3; got 4"),
        ({"num_objectives": True}, "`num_objectives` must be 2 or 3"),
        ({"completion_words": 0}, "`completion_words` must be an integer >= 1; got 0"),
        ({"completion_words": 2.5}, "`completion_words` must be an integer >= 1"),
        ({"kappa": 0.0}, r"`kappa` must be a number > 0"),
        ({"kappa": "1"}, r"`kappa` must be a number > 0"),
    ],
)
def test_task_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LexiconTask(**kwargs)


@pytest.mark.parametrize("weights", [[[0.7, 0.4]], [[0.5, 0.3, 0.2]], [[1.2, -0.2]]])
def test_bad_weights_name_eval_weights(weights):
    task = LexiconTask()
    for method in (task.oracle_points, task.oracle_shortfall, task.linear_oracle_points):
        with pytest.raises(ValueError, match="`eval_weights`"):
            method(weights)
