import math

import pytest
import torch

from pareto_lightning.losses import DPOStats, dpo_loss


def _pairs():
    """Two pairs, hand-worked margins.

    pair 0: chosen log-ratio -1 - (-2) = 1, rejected log-ratio -4 - (-3) = -1 -> h = 2
    pair 1: chosen log-ratio -5 - (-3) = -2, rejected log-ratio -4 - (-3) = -1 -> h = -1
    """
    pc = torch.tensor([-1.0, -5.0], dtype=torch.float64, requires_grad=True)
    pr = torch.tensor([-4.0, -4.0], dtype=torch.float64, requires_grad=True)
    rc = torch.tensor([-2.0, -3.0], dtype=torch.float64)
    rr = torch.tensor([-3.0, -3.0], dtype=torch.float64)
    return pc, pr, rc, rr


def _softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def test_sigmoid_hand_values_stats_and_gradient():
    pc, pr, rc, rr = _pairs()
    loss, stats = dpo_loss(pc, pr, rc, rr, beta=0.5)
    # -log sigmoid(x) = log(1 + e^-x): pair 0 x = 1, pair 1 x = -0.5
    assert loss.item() == pytest.approx((_softplus(-1.0) + _softplus(0.5)) / 2)
    assert loss.item() == pytest.approx((0.3132617 + 0.9740770) / 2, abs=1e-7)
    assert stats.reward_margin.item() == pytest.approx(0.25)  # mean(0.5 * 2, 0.5 * -1)
    assert stats.accuracy.item() == pytest.approx(0.5)
    assert stats.chosen_reward.item() == pytest.approx(-0.25)  # mean(0.5 * 1, 0.5 * -2)
    assert stats.rejected_reward.item() == pytest.approx(-0.5)  # mean(0.5 * -1, 0.5 * -1)
    assert stats.num_pairs.item() == 2
    loss.backward()
    # d/d pc of -log sigmoid(beta h) = -beta sigmoid(-beta h), over N = 2 pairs; d/d pr is its negative.
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    expected = torch.tensor([-0.5 * sig(-1.0) / 2, -0.5 * sig(0.5) / 2], dtype=torch.float64)
    torch.testing.assert_close(pc.grad, expected)
    torch.testing.assert_close(pr.grad, -expected)


def test_sigmoid_reference_values():
    zero = torch.zeros(1)
    assert dpo_loss(zero, zero, zero, zero)[0].item() == pytest.approx(math.log(2))
    ten = torch.tensor([10.0])
    assert dpo_loss(ten, zero, zero, zero, beta=0.1)[0].item() == pytest.approx(math.log(1 + math.exp(-1)))


def test_ipo_hand_values_and_gradient():
    pc, pr, rc, rr = _pairs()
    loss, stats = dpo_loss(pc, pr, rc, rr, beta=0.5, loss_type="ipo")
    # target 1 / (2 * 0.5) = 1: (2 - 1)^2 = 1 and (-1 - 1)^2 = 4 -> mean 2.5
    assert loss.item() == pytest.approx(2.5)
    assert stats.reward_margin.item() == pytest.approx(0.25)
    loss.backward()
    # d/d pc = 2 (h - 1) / N: pair 0 -> 1, pair 1 -> -2
    torch.testing.assert_close(pc.grad, torch.tensor([1.0, -2.0], dtype=torch.float64))
    zero = torch.zeros(3)
    assert dpo_loss(zero, zero, zero, zero, beta=0.1, loss_type="ipo")[0].item() == pytest.approx(25.0)


@pytest.mark.parametrize("mask", [torch.tensor([True, False]), torch.tensor([1.0, 0.0])])
def test_mask_selects_valid_pairs(mask):
    pc, pr, rc, rr = _pairs()
    with torch.no_grad():
        pc[1] = -math.inf  # whatever sits in an invalid pair must not leak
    loss, stats = dpo_loss(pc, pr, rc, rr, beta=0.5, mask=mask)
    assert loss.item() == pytest.approx(_softplus(-1.0))  # pair 0 only
    assert stats.num_pairs.item() == 1 and stats.accuracy.item() == 1.0
    assert stats.reward_margin.item() == pytest.approx(1.0) and stats.chosen_reward.item() == pytest.approx(
        0.5
    )
    loss.backward()
    assert torch.isfinite(pc.grad).all() and pc.grad[1] == 0 and pr.grad[1] == 0


@pytest.mark.parametrize("loss_type", ["sigmoid", "ipo"])
def test_no_valid_pair_gives_exact_zero_with_grad_path(loss_type):
    pc, pr, rc, rr = _pairs()
    loss, stats = dpo_loss(pc, pr, rc, rr, loss_type=loss_type, mask=torch.zeros(2, dtype=torch.bool))
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.equal(pc.grad, torch.zeros(2, dtype=torch.float64))
    assert all(v.item() == 0 for v in stats)


def test_stats_detached_and_named():
    pc, pr, rc, rr = _pairs()
    _, stats = dpo_loss(pc, pr, rc, rr)
    assert isinstance(stats, DPOStats)
    assert not any(v.requires_grad for v in stats)
    assert stats._fields == ("reward_margin", "accuracy", "chosen_reward", "rejected_reward", "num_pairs")


def test_dpo_loss_errors():
    x = torch.zeros(2)
    for beta in (0.0, -0.1):
        with pytest.raises(ValueError, match=f"`beta`.*must be > 0.*got {beta}"):
            dpo_loss(x, x, x, x, beta=beta)
    with pytest.raises(ValueError, match="'sigmoid' or 'ipo'; got 'hinge'"):
        dpo_loss(x, x, x, x, loss_type="hinge")
    with pytest.raises(ValueError, match="1-D \\[N\\] of one shape.*'ref_rejected': \\(3,\\)"):
        dpo_loss(x, x, x, torch.zeros(3))
    with pytest.raises(ValueError, match="1-D \\[N\\] of one shape.*policy_chosen \\(2, 1\\)"):
        dpo_loss(x[:, None], x[:, None], x[:, None], x[:, None])
    with pytest.raises(ValueError, match="'mask': \\(1,\\)"):
        dpo_loss(x, x, x, x, mask=torch.ones(1, dtype=torch.bool))
