"""Functional metrics against hand-worked values and independent brute-force references."""

from __future__ import annotations

import itertools
import math

import pytest
import scipy.stats
import torch

from pareto_lightning.metrics.functional import (
    hypervolume,
    max_gap,
    non_dominated,
    preference_utility,
    spearman_correlation,
)

# ---------------------------------------------------------------- references written for the tests


def shortfall_loop(r: list[float], w: list[float], z: list[float], mu: float) -> float:
    return mu * math.log(sum(math.exp(wi * (zi - ri) / mu) for ri, wi, zi in zip(r, w, z, strict=True)))


def hv_grid(points: list[tuple[int, ...]], ref: tuple[int, ...]) -> int:
    """Count unit cells [c, c + 1] above ``ref`` whose upper corner some point weakly dominates (integers)."""
    k = len(ref)
    top = [max([ref[i]] + [p[i] for p in points]) for i in range(k)]
    count = 0
    for cell in itertools.product(*(range(ref[i], top[i]) for i in range(k))):
        if any(all(p[i] >= cell[i] + 1 for i in range(k)) for p in points):
            count += 1
    return count


def hv_inclusion_exclusion(points: list[list[float]], ref: list[float]) -> float:
    """Volume of a union of boxes [ref, p] by inclusion-exclusion over every non-empty subset."""
    total = 0.0
    for size in range(1, len(points) + 1):
        for subset in itertools.combinations(points, size):
            corner = [min(p[i] for p in subset) for i in range(len(ref))]
            vol = math.prod(max(0.0, c - r) for c, r in zip(corner, ref, strict=True))
            total += (-1) ** (size + 1) * vol
    return total


def dominated_loop(points: list[list[float]]) -> list[bool]:
    keep = []
    for p in points:
        dominated = any(
            all(q[i] >= p[i] for i in range(len(p))) and any(q[i] > p[i] for i in range(len(p)))
            for q in points
        )
        keep.append(not dominated)
    return keep


# ---------------------------------------------------------------- preference_utility


def test_preference_utility_hand_worked() -> None:
    r = torch.tensor([[0.5, 0.5]], dtype=torch.float64)
    got = preference_utility(r, torch.tensor([0.5, 0.5], dtype=torch.float64), ideal_point=1.0, mu=0.1)
    assert got.item() == pytest.approx(0.25 + 0.1 * math.log(2), abs=1e-12)


def test_preference_utility_vector_ideal_point_and_per_row_weights() -> None:
    r = torch.tensor([[0.5, 0.2], [0.9, 0.1]], dtype=torch.float64)
    w = torch.tensor([[0.5, 0.5], [0.2, 0.8]], dtype=torch.float64)
    # row 1: gaps 0.25, 0.1; row 2: gaps 0.02, 0.24 (z = (1, 0.4)), mu = 0.1
    row1 = 0.1 * math.log(math.exp(2.5) + math.exp(1.0))
    row2 = 0.1 * math.log(math.exp(0.2) + math.exp(2.4))
    got = preference_utility(r, w, ideal_point=[1.0, 0.4], mu=0.1)
    assert got.item() == pytest.approx((row1 + row2) / 2, abs=1e-12)


def test_preference_utility_matches_loop_and_tchebycheff_bounds() -> None:
    g = torch.Generator().manual_seed(0)
    for k in (2, 3, 5):
        r = torch.rand(16, k, generator=g, dtype=torch.float64)
        w = torch.distributions.Dirichlet(torch.ones(k, dtype=torch.float64)).sample((16,))
        mu = 0.05
        got = preference_utility(r, w, ideal_point=1.0, mu=mu).item()
        rows = [shortfall_loop(r[i].tolist(), w[i].tolist(), [1.0] * k, mu) for i in range(16)]
        assert got == pytest.approx(sum(rows) / 16, abs=1e-12)
        hard = (w * (1 - r)).amax(-1).mean().item()
        assert hard <= got <= hard + mu * math.log(k) + 1e-12


def test_preference_utility_is_lower_for_better_rewards() -> None:
    w = torch.tensor([0.3, 0.7])
    worse = preference_utility(torch.tensor([[0.2, 0.2]]), w)
    better = preference_utility(torch.tensor([[0.2, 0.9]]), w)
    assert better < worse


def test_preference_utility_integer_rewards_and_list_weights() -> None:
    got = preference_utility(torch.tensor([[1, 1]]), [0.5, 0.5], mu=0.1)
    assert got.item() == pytest.approx(0.1 * math.log(2), abs=1e-6)


@pytest.mark.parametrize(
    ("rewards", "weights", "kwargs", "match"),
    [
        (torch.ones(2, 2), torch.tensor([0.5, 0.5]), {"mu": 0.0}, r"`mu` must be a finite float > 0"),
        (torch.ones(2, 2), torch.tensor([0.5, 0.5]), {"mu": -1.0}, r"`mu` must be a finite float > 0"),
        (
            torch.ones(2, 2),
            torch.tensor([0.5, 0.5]),
            {"mu": float("inf")},
            r"`mu` must be a finite float > 0",
        ),
        (torch.ones(2, 2), torch.tensor([0.5, 0.5]), {"mu": True}, r"`mu` must be a finite float > 0"),
        (torch.ones(2), torch.tensor([0.5, 0.5]), {}, r"`rewards` must be a 2-D tensor \[N, K\]"),
        (torch.tensor([[0.5, float("nan")]]), torch.tensor([0.5, 0.5]), {}, r"`rewards` must be finite"),
        (torch.tensor([[0.5, float("inf")]]), torch.tensor([0.5, 0.5]), {}, r"`rewards` must be finite"),
        (torch.ones(2, 2), torch.tensor([0.7, 0.4]), {}, r"`weights` must lie on the simplex"),
        (torch.ones(2, 2), torch.tensor([1.0, 0.0, 0.0]), {}, r"`weights` must have 2 entries"),
        (torch.ones(2, 2), torch.tensor([[0.5, 0.5]] * 3), {}, r"`weights` must be \[K\] .* N = 2 rows"),
        (
            torch.ones(2, 2),
            torch.full((1, 2, 2), 0.5),
            {},
            r"`weights` must be \[K\] .* got shape \(1, 2, 2\)",
        ),
        (
            torch.ones(2, 2),
            torch.tensor([0.5, 0.5]),
            {"ideal_point": [1.0, 1.0, 1.0]},
            r"`ideal_point` must be",
        ),
        (
            torch.ones(2, 2),
            torch.tensor([0.5, 0.5]),
            {"ideal_point": float("nan")},
            r"`ideal_point` must be finite",
        ),
        (torch.ones(0, 2), torch.tensor([0.5, 0.5]), {}, r"needs at least one row of `rewards`"),
    ],
)
def test_preference_utility_errors(rewards, weights, kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        preference_utility(rewards, weights, **kwargs)


# ---------------------------------------------------------------- hypervolume


def test_hypervolume_hand_worked() -> None:
    pts = torch.tensor([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0]])
    assert hypervolume(pts, 0.0).item() == pytest.approx(6.0)
    assert hypervolume(pts, [1.0, 0.0]).item() == pytest.approx(3.0)  # only (2, 2), (3, 1) reach past x = 1
    assert hypervolume(torch.tensor([[2.0, 3.0, 4.0]]), [1.0, 1.0, 1.0]).item() == pytest.approx(6.0)


def test_hypervolume_points_not_dominating_reference_add_nothing() -> None:
    base = torch.tensor([[0.5, 0.5]], dtype=torch.float64)
    extra = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, -1.0], [-3.0, -3.0]], dtype=torch.float64)
    assert hypervolume(base, 0.0).item() == pytest.approx(0.25, abs=1e-15)
    assert hypervolume(torch.cat([base, extra]), 0.0).item() == pytest.approx(0.25, abs=1e-15)
    assert hypervolume(extra, 0.0).item() == 0.0
    # a reference just below the worst value does count the corners (the reason for a -0.1 default)
    assert hypervolume(torch.cat([base, extra[:2]]), -0.1).item() == pytest.approx(
        0.36 + 2 * 0.1 * 0.5, abs=1e-12
    )


def test_hypervolume_empty_set_is_zero() -> None:
    assert hypervolume(torch.zeros(0, 3), 0.0).item() == 0.0


@pytest.mark.parametrize("k", [2, 3, 4])
def test_hypervolume_matches_grid_count_on_integer_fronts(k: int) -> None:
    g = torch.Generator().manual_seed(k)
    for trial in range(15):
        n = int(torch.randint(1, 8, (1,), generator=g))
        pts = torch.randint(-1, 5, (n, k), generator=g)
        ref = tuple(int(v) for v in torch.randint(-1, 2, (k,), generator=g))
        expected = hv_grid([tuple(p) for p in pts.tolist()], ref)
        got = hypervolume(pts.double(), list(ref)).item()
        assert got == pytest.approx(expected, abs=1e-9), (trial, pts.tolist(), ref)


@pytest.mark.parametrize("k", [2, 3, 4, 5])
def test_hypervolume_matches_inclusion_exclusion_on_real_points(k: int) -> None:
    g = torch.Generator().manual_seed(10 + k)
    for _ in range(10):
        pts = torch.rand(7, k, generator=g, dtype=torch.float64)
        ref = (torch.rand(k, generator=g, dtype=torch.float64) * 0.3).tolist()
        expected = hv_inclusion_exclusion(pts.tolist(), ref)
        assert hypervolume(pts, ref).item() == pytest.approx(expected, rel=1e-10, abs=1e-14)


def test_hypervolume_keeps_dtype_and_accepts_tensor_reference() -> None:
    pts = torch.tensor([[1.0, 3.0], [2.0, 2.0]], dtype=torch.float64)
    out = hypervolume(pts, torch.tensor([0.0, 0.0]))
    assert out.dtype == torch.float64 and out.shape == ()
    assert out.item() == pytest.approx(5.0)
    assert hypervolume(torch.tensor([[1, 3], [2, 2]]), 0).dtype == torch.get_default_dtype()


@pytest.mark.parametrize(
    ("points", "ref", "match"),
    [
        (torch.ones(3), 0.0, r"`points` must be a 2-D tensor \[N, K\]"),
        (torch.ones(3, 0), 0.0, r"`points` must be a 2-D tensor \[N, K\]"),
        (torch.tensor([[1.0, float("nan")]]), 0.0, r"`points` must be finite"),
        (torch.ones(2, 2), [0.0, 0.0, 0.0], r"`ref_point` must be a float or a sequence of 2 floats"),
        (torch.ones(2, 2), [[0.0, 0.0]], r"`ref_point` must be a float or a sequence of 2 floats"),
        (torch.ones(2, 2), float("-inf"), r"`ref_point` must be finite"),
    ],
)
def test_hypervolume_errors(points, ref, match) -> None:
    with pytest.raises(ValueError, match=match):
        hypervolume(points, ref)


# ---------------------------------------------------------------- non_dominated


def test_non_dominated_hand_example_keeps_duplicates() -> None:
    pts = torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.4, 0.5], [0.5, 0.5], [0.0, 1.0], [0.0, 0.9], [1.0, 0.0]])
    assert non_dominated(pts).tolist() == [True, True, False, True, True, False, True]


def test_non_dominated_matches_loop_and_chunking(monkeypatch: pytest.MonkeyPatch) -> None:
    import pareto_lightning.metrics.functional.pareto as hv_module

    g = torch.Generator().manual_seed(3)
    for k in (1, 2, 3, 4):
        pts = torch.randint(0, 4, (30, k), generator=g).double()
        expected = dominated_loop(pts.tolist())
        assert non_dominated(pts).tolist() == expected
        monkeypatch.setattr(
            hv_module, "_ELEMENTS_PER_CHUNK", 7 * 30 * k
        )  # 7 rows per chunk, uneven last chunk
        assert non_dominated(pts).tolist() == expected
        monkeypatch.undo()


def test_non_dominated_errors() -> None:
    with pytest.raises(ValueError, match=r"`points` must be a 2-D tensor"):
        non_dominated(torch.ones(4))


# ---------------------------------------------------------------- spearman_correlation


def test_spearman_hand_worked() -> None:
    assert spearman_correlation([1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 2.0, 4.0]) == pytest.approx(0.8)
    # ties: ranks x = (1, 2.5, 2.5, 4), y = (1, 2, 3, 4) -> 4.5 / sqrt(4.5 * 5)
    assert spearman_correlation([1.0, 2.0, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0]) == pytest.approx(
        4.5 / math.sqrt(22.5)
    )
    assert spearman_correlation([1.0, 2.0, 3.0], [9.0, 4.0, 1.0]) == pytest.approx(-1.0)


def test_spearman_constant_side_returns_zero() -> None:
    assert spearman_correlation(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([0.5, 0.5, 0.5])) == 0.0
    assert spearman_correlation(torch.tensor([2.0, 2.0]), torch.tensor([0.1, 0.9])) == 0.0
    assert spearman_correlation(torch.tensor([1.0]), torch.tensor([3.0])) == 0.0


def test_spearman_matches_scipy_with_ties() -> None:
    g = torch.Generator().manual_seed(1)
    for m in (5, 12, 28):
        x = torch.randint(0, 5, (m,), generator=g).double()
        y = (x + torch.randint(-3, 4, (m,), generator=g)).double()
        expected = scipy.stats.spearmanr(x.numpy(), y.numpy()).statistic
        assert spearman_correlation(x, y) == pytest.approx(float(expected), abs=1e-12)


@pytest.mark.parametrize(
    ("x", "y", "match"),
    [
        ([1.0, 2.0], [1.0, 2.0, 3.0], r"`x` and `y` must have the same length; got 2 and 3"),
        ([[1.0, 2.0]], [1.0, 2.0], r"`x` must be a non-empty 1-D tensor \[M\]"),
        ([1.0, 2.0], [], r"`y` must be a non-empty 1-D tensor \[M\]"),
        ([1.0, float("nan")], [1.0, 2.0], r"`x` must be finite"),
    ],
)
def test_spearman_errors(x, y, match) -> None:
    with pytest.raises(ValueError, match=match):
        spearman_correlation(x, y)


# ---------------------------------------------------------------- max_gap


def test_max_gap_two_objectives_hand_worked() -> None:
    pts = torch.tensor([[0.0, 1.0], [0.3, 0.6], [1.0, 0.0], [0.2, 0.2]])  # (0.2, 0.2) is dominated
    assert max_gap(pts) == pytest.approx(math.sqrt(0.85))
    # order of the input does not matter, duplicates change nothing
    assert max_gap(pts[[2, 0, 3, 1, 2]]) == pytest.approx(math.sqrt(0.85))


def test_max_gap_three_objectives_nearest_neighbour() -> None:
    pts = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.5, 0.5, 0.0]])
    # e3 is the most isolated: its nearest neighbour is (0.5, 0.5, 0) at sqrt(1.5)
    assert max_gap(pts) == pytest.approx(math.sqrt(1.5))
    # a duplicate of e3 must not hide its isolation
    assert max_gap(torch.cat([pts, pts[2:3]])) == pytest.approx(math.sqrt(1.5))


def test_max_gap_matches_loop_on_random_fronts() -> None:
    g = torch.Generator().manual_seed(2)
    for _ in range(5):
        angles = torch.rand(12, generator=g, dtype=torch.float64) * math.pi / 2
        pts = torch.stack(
            [angles.cos(), angles.sin()], dim=-1
        )  # all on the quarter circle: all non-dominated
        ordered = sorted(pts.tolist())
        expected = max(math.dist(a, b) for a, b in itertools.pairwise(ordered))
        assert max_gap(pts) == pytest.approx(expected, abs=1e-12)


def test_max_gap_degenerate_cases_are_zero() -> None:
    assert max_gap(torch.tensor([[0.5, 0.5], [0.1, 0.1]])) == 0.0  # one non-dominated point
    assert max_gap(torch.tensor([[0.5, 0.5], [0.5, 0.5]])) == 0.0  # copies of one point
    assert max_gap(torch.tensor([[0.3], [0.9]])) == 0.0  # K = 1: only the maximum survives


def test_max_gap_errors() -> None:
    with pytest.raises(ValueError, match=r"`points` must be a 2-D tensor"):
        max_gap(torch.tensor([0.1, 0.2]))
    with pytest.raises(ValueError, match=r"`points` must be finite"):
        max_gap(torch.tensor([[0.1, float("inf")]]))
