"""``PreferenceUtility`` and ``Hypervolume``: batch accumulation agrees with the functional form."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from pareto_lightning.metrics import Hypervolume, PreferenceUtility
from pareto_lightning.metrics.functional import hypervolume, preference_utility


def _data(seed: int, n: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    rewards = torch.rand(n, k, generator=g, dtype=torch.float64)
    weights = torch.distributions.Dirichlet(torch.ones(k, dtype=torch.float64)).sample((n,))
    return rewards, weights


# ---------------------------------------------------------------- PreferenceUtility


def test_preference_utility_class_hand_worked() -> None:
    metric = PreferenceUtility(mu=0.1, ideal_point=1.0)
    metric.update(torch.tensor([[0.5, 0.5]]), torch.tensor([0.5, 0.5]))
    metric.update(torch.tensor([[1.0, 0.0]]), [1.0, 0.0])
    assert metric.compute().item() == pytest.approx((0.25 + 2 * 0.1 * math.log(2)) / 2, abs=1e-6)


def test_preference_utility_class_agrees_with_functional_over_uneven_batches() -> None:
    rewards, weights = _data(0, 23, 3)
    metric = PreferenceUtility(mu=0.2, ideal_point=[1.0, 0.9, 1.1])
    metric.set_dtype(torch.float64)
    for lo, hi in ((0, 5), (5, 5), (5, 17), (17, 23)):  # includes an empty batch
        metric.update(rewards[lo:hi], weights[lo:hi])
    expected = preference_utility(rewards, weights, ideal_point=[1.0, 0.9, 1.1], mu=0.2)
    assert metric.compute().item() == pytest.approx(expected.item(), abs=1e-12)
    assert int(metric.count) == 23


def test_preference_utility_class_forward_reset_and_attributes() -> None:
    rewards, weights = _data(1, 8, 2)
    metric = PreferenceUtility()
    batch_value = metric(rewards[:4], weights[:4])
    assert batch_value.item() == pytest.approx(preference_utility(rewards[:4], weights[:4]).item(), abs=1e-6)
    metric.update(rewards[4:], weights[4:])
    assert metric.compute().item() == pytest.approx(preference_utility(rewards, weights).item(), abs=1e-6)
    metric.reset()
    metric.update(rewards[4:], weights[4:])
    assert metric.compute().item() == pytest.approx(
        preference_utility(rewards[4:], weights[4:]).item(), abs=1e-6
    )
    assert PreferenceUtility.higher_is_better is False and PreferenceUtility.full_state_update is False


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mu": 0.0}, r"`mu` must be a finite float > 0"),
        ({"mu": -0.1}, r"`mu` must be a finite float > 0"),
        ({"ideal_point": float("nan")}, r"`ideal_point` must be finite"),
        ({"ideal_point": [[1.0, 1.0]]}, r"`ideal_point` must be a float or a non-empty sequence of floats"),
        ({"ideal_point": []}, r"`ideal_point` must be a float or a non-empty sequence of floats"),
    ],
)
def test_preference_utility_class_constructor_errors(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        PreferenceUtility(**kwargs)


def test_preference_utility_class_update_errors() -> None:
    metric = PreferenceUtility(ideal_point=[1.0, 1.0])
    with pytest.raises(ValueError, match=r"`ideal_point` must be a float or a sequence of 3 floats"):
        metric.update(torch.ones(2, 3), torch.tensor([0.2, 0.3, 0.5]))
    with pytest.raises(ValueError, match=r"`weights` must lie on the simplex"):
        metric.update(torch.ones(2, 2), torch.tensor([0.2, 0.3]))


def test_preference_utility_class_compute_without_rows_raises() -> None:
    metric = PreferenceUtility()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchmetrics warns about compute() before update()
        with pytest.raises(ValueError, match=r"needs at least one row of `rewards`"):
            metric.compute()


# ---------------------------------------------------------------- Hypervolume


def _front(seed: int, n: int, k: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    directions = torch.rand(n, k, generator=g, dtype=torch.float64)
    directions = directions / directions.norm(dim=-1, keepdim=True)
    return directions * (1 - 0.2 * torch.rand(n, 1, generator=g, dtype=torch.float64)) - 0.05  # [N, K]


@pytest.mark.parametrize("k", [2, 3, 4])
def test_hypervolume_class_agrees_with_functional(k: int) -> None:
    pts = _front(k, 40, k)
    metric = Hypervolume(ref_point=[0.0] * k)
    metric.set_dtype(torch.float64)
    for chunk in pts.split(13):
        metric.update(chunk)
    assert metric.compute().item() == pytest.approx(hypervolume(pts, 0.0).item(), rel=1e-12)


def test_hypervolume_class_hand_worked_and_default_dtype() -> None:
    metric = Hypervolume(ref_point=0.0)
    metric.update(torch.tensor([[1.0, 3.0], [2.0, 2.0]]))
    metric.update(torch.tensor([[3.0, 1.0], [-1.0, 5.0], [4.0, 0.0]]))  # the last two add nothing
    out = metric.compute()
    assert out.item() == pytest.approx(6.0) and out.dtype == torch.float32
    assert sum(t.numel() for t in metric.points) == 6  # only the three useful points were stored


def test_hypervolume_class_forward_and_reset() -> None:
    metric = Hypervolume(ref_point=0.0)
    assert metric(torch.tensor([[1.0, 3.0]])).item() == pytest.approx(3.0)  # this batch alone
    assert metric(torch.tensor([[3.0, 1.0]])).item() == pytest.approx(3.0)
    assert metric.compute().item() == pytest.approx(5.0)  # union of both batches
    metric.reset()
    with pytest.warns(UserWarning, match=r"called before the ``update`` method"):
        assert metric.compute().item() == 0.0
    assert Hypervolume.higher_is_better is True and Hypervolume.full_state_update is False


def test_hypervolume_class_without_useful_points_is_zero() -> None:
    metric = Hypervolume(ref_point=[0.5, 0.5])
    metric.update(torch.tensor([[0.4, 0.9], [0.9, 0.5]]))
    assert metric.compute().item() == 0.0


@pytest.mark.parametrize(
    ("ref", "match"),
    [
        (float("inf"), r"`ref_point` must be finite"),
        ([0.0, float("nan")], r"`ref_point` must be finite"),
        ([[0.0, 0.0]], r"`ref_point` must be a float or a non-empty sequence of floats"),
    ],
)
def test_hypervolume_class_constructor_errors(ref, match) -> None:
    with pytest.raises(ValueError, match=match):
        Hypervolume(ref_point=ref)


def test_hypervolume_class_update_errors() -> None:
    metric = Hypervolume(ref_point=0.0)
    metric.update(torch.ones(2, 2))
    with pytest.raises(ValueError, match=r"same number of objectives across updates: first 2, now 3"):
        metric.update(torch.ones(2, 3))
    with pytest.raises(ValueError, match=r"`ref_point` must be a float or a sequence of 3 floats"):
        Hypervolume(ref_point=[0.0, 0.0]).update(torch.ones(1, 3))
    with pytest.raises(ValueError, match=r"`points` must be finite"):
        metric.update(torch.tensor([[float("nan"), 1.0]]))
