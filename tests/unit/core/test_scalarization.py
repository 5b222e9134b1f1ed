import math

import pytest
import torch

from pareto_lightning.scalarization import SmoothTchebycheff, Tchebycheff, WeightedSum
from pareto_lightning.scalarization.functional import smooth_tchebycheff, tchebycheff, weighted_sum


def test_hand_worked_values():
    r, w = torch.tensor([0.2, 0.8]), torch.tensor([0.25, 0.75])
    assert weighted_sum(r, w).item() == pytest.approx(0.05 + 0.6)
    # gaps: 0.25*0.8 = 0.2, 0.75*0.2 = 0.15
    assert tchebycheff(r, w, 1.0).item() == pytest.approx(-0.2)
    expected = -0.1 * math.log(math.exp(2.0) + math.exp(1.5))
    assert smooth_tchebycheff(r, w, 1.0, 0.1).item() == pytest.approx(expected)
    z = torch.tensor([1.0, 2.0])  # per-objective ideal point: gaps 0.2 and 0.9
    assert tchebycheff(r, w, z).item() == pytest.approx(-0.9)


def test_one_hot_weights_make_linear_pick_one_objective():
    r = torch.rand(10, 3)
    for k in range(3):
        w = torch.nn.functional.one_hot(torch.tensor(k), 3).float()
        assert torch.equal(weighted_sum(r, w), r[:, k])


@pytest.mark.parametrize("mu", [1.0, 0.1, 0.01, 1e-3])
def test_smooth_tends_to_hard_within_mu_log_k(mu):
    torch.manual_seed(0)
    r, w = (
        torch.rand(200, 3, dtype=torch.float64),
        torch.distributions.Dirichlet(torch.ones(3)).sample((200,)),
    )
    hard = tchebycheff(r, w.double(), 1.0)
    smooth = smooth_tchebycheff(r, w.double(), 1.0, mu)
    assert (smooth <= hard + 1e-12).all()
    assert (smooth >= hard - mu * math.log(3) - 1e-12).all()


def test_stable_for_tiny_mu_and_large_rewards():
    r = torch.tensor([[1e4, -1e4], [-3e4, 2e4]])
    w = torch.tensor([0.5, 0.5])
    out = smooth_tchebycheff(r, w, 1.0, 1e-4)
    assert torch.isfinite(out).all()
    assert torch.allclose(out, tchebycheff(r, w, 1.0), rtol=1e-6)


@pytest.mark.parametrize("fn", [weighted_sum, lambda r, w: smooth_tchebycheff(r, w, 1.0, 0.1), tchebycheff])
def test_monotone_non_decreasing_in_each_reward(fn):
    torch.manual_seed(1)
    r, w = torch.rand(100, 2), torch.distributions.Dirichlet(torch.ones(2)).sample((100,))
    for k in range(2):
        bumped = r.clone()
        bumped[:, k] += torch.rand(100)
        assert (fn(bumped, w) >= fn(r, w) - 1e-7).all()


def test_non_convex_front_linear_picks_corners_tchebycheff_moves_inside():
    t = torch.linspace(0, 1, 201, dtype=torch.float64)
    front = torch.stack([t**1.5, (1 - t) ** 1.5], -1)  # [P, 2], non-convex (concave towards the origin)
    linear_picks, smooth_picks = [], []
    for a in torch.linspace(0.05, 0.95, 19, dtype=torch.float64).tolist():
        w = torch.tensor([a, 1 - a], dtype=torch.float64)
        linear_picks.append(t[weighted_sum(front, w).argmax()].item())
        smooth_picks.append(t[smooth_tchebycheff(front, w, 1.0, 0.01).argmax()].item())
    assert set(linear_picks) <= {0.0, 1.0}
    interior = [p for p in smooth_picks if 0.05 < p < 0.95]
    assert len(interior) >= 15
    assert all(b >= a for a, b in zip(smooth_picks, smooth_picks[1:], strict=False))  # moves with w
    assert smooth_picks[9] == pytest.approx(0.5, abs=0.01)  # w = (0.5, 0.5) -> the symmetric point


def test_modules_match_functional_and_accept_vector_ideal_point():
    r, w = torch.rand(5, 2), torch.tensor([[0.3, 0.7]]).expand(5, 2)
    assert torch.equal(WeightedSum()(r, w), weighted_sum(r, w))
    z = [1.0, 0.5]
    assert torch.allclose(SmoothTchebycheff(0.2, z)(r, w), smooth_tchebycheff(r, w, torch.tensor(z), 0.2))
    assert torch.allclose(Tchebycheff(z)(r, w), tchebycheff(r, w, torch.tensor(z)))
    assert "mu=0.2" in repr(SmoothTchebycheff(0.2, z))


def test_errors():
    key = r"`model.init_args.scalarizer.init_args.mu`"
    with pytest.raises(ValueError, match=key + r" must be a finite float > 0 \(the smoothing\); got 0.0"):
        SmoothTchebycheff(mu=0.0)
    with pytest.raises(ValueError, match=r"`mu` must be a finite float > 0 \(the smoothing\); got -1.0"):
        smooth_tchebycheff(torch.rand(2), torch.rand(2), 1.0, -1.0)
    with pytest.raises(ValueError, match="ideal_point"):
        Tchebycheff(ideal_point=[[1.0]])
    with pytest.raises(ValueError, match="ideal_point"):
        SmoothTchebycheff(ideal_point=float("inf"))
    with pytest.raises(ValueError, match="objectives"):
        weighted_sum(torch.rand(3), torch.rand(2))


def test_steering_bonus_hand_worked_values():
    from pareto_lightning.scalarization.functional import steering_bonus

    # K = 2, w = (0.9, 0.1): (0.9 - 0.5) * 0.8 + (0.1 - 0.5) * 0.2 = 0.32 - 0.08
    assert steering_bonus(torch.tensor([0.8, 0.2]), torch.tensor([0.9, 0.1])).item() == pytest.approx(0.24)
    # K = 3, w = (1, 0, 0): 2/3 * 0.5 - 1/3 * 0.2 - 1/3 * 0.1 = 0.7 / 3
    r3 = torch.tensor([0.5, 0.2, 0.1])
    assert steering_bonus(r3, torch.tensor([1.0, 0.0, 0.0])).item() == pytest.approx(0.7 / 3)
    assert steering_bonus(r3, torch.full((3,), 1 / 3)).item() == pytest.approx(0.0, abs=1e-7)


def test_steering_bonus_averages_to_the_weight_reward_covariance():
    """Over symmetric Dirichlet draws, the mean bonus is sum_k Cov(w_k, r_k), computed here by numpy."""
    import numpy as np

    from pareto_lightning.scalarization.functional import steering_bonus

    rng = np.random.default_rng(0)
    w = rng.dirichlet(np.ones(3), size=200_000)
    r = np.tanh(2 * w) + 0.1 * rng.standard_normal(w.shape)  # rewards that follow the weights, with noise
    covariance = sum(np.cov(w[:, k], r[:, k])[0, 1] for k in range(3))
    bonus = steering_bonus(torch.from_numpy(r), torch.from_numpy(w)).mean().item()
    assert bonus == pytest.approx(covariance, rel=0.02)
    assert covariance > 0.01  # not a vacuous match of two zeros


def test_steering_bonus_module_wraps_a_scalarizer():
    from pareto_lightning.scalarization import SteeringBonus

    torch.manual_seed(2)
    r, w = (
        torch.rand(50, 2, dtype=torch.float64),
        torch.distributions.Dirichlet(torch.ones(2)).sample((50,)).double(),
    )
    # With the weighted sum, the sum is linear again with the sharper weights (1 + s) w - s / K.
    assert torch.allclose(SteeringBonus(WeightedSum(), 0.5)(r, w), weighted_sum(r, 1.5 * w - 0.25))
    assert torch.equal(SteeringBonus(SmoothTchebycheff(), 0.0)(r, w), SmoothTchebycheff()(r, w))
    assert "strength=0.5" in repr(SteeringBonus(SmoothTchebycheff(), 0.5))
    with pytest.raises(ValueError, match="ideal_point"):  # the wrapped scalarizer's own check still runs
        SteeringBonus(SmoothTchebycheff(ideal_point=[1.0, 1.0, 1.0])).check_num_objectives(2)


@pytest.mark.parametrize("strength", [-0.1, float("nan"), float("inf"), True, "1"])
def test_steering_bonus_refuses_bad_strength(strength):
    from pareto_lightning.scalarization import SteeringBonus

    with pytest.raises(ValueError, match=r"`model\.init_args\.scalarizer\.init_args\.strength`"):
        SteeringBonus(WeightedSum(), strength)


def test_steering_bonus_refuses_a_non_scalarizer():
    from pareto_lightning.scalarization import SteeringBonus

    with pytest.raises(TypeError, match=r"`model\.init_args\.scalarizer\.init_args\.scalarizer`"):
        SteeringBonus(lambda r, w: r.sum(-1))
