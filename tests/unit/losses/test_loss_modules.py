"""GRPOLoss and DPOLoss: hyperparameters checked once when built, forward equal to the pure functions."""

import pytest
import torch

from pareto_lightning.losses import DPOLoss, GRPOLoss, dpo_loss, group_advantages, grpo_loss


def test_grpo_loss_module_is_the_pure_function():
    torch.manual_seed(0)
    logp, old, ref = torch.randn(3, 4, 5).unbind(0)
    mask = torch.rand(4, 5) > 0.3
    u = torch.randn(4)
    module = GRPOLoss(
        epsilon=0.1, epsilon_high=0.3, beta=0.2, advantage_scale="batch", aggregation="token_mean"
    )
    adv = module.advantages(u, 2)
    assert torch.equal(adv, group_advantages(u, 2, scale="batch"))
    loss, stats = module(logp, old, ref, adv, mask)
    expected, expected_stats = grpo_loss(logp, old, ref, adv, mask, 0.1, 0.3, 0.2, "token_mean")
    assert torch.equal(loss, expected) and stats == expected_stats
    assert module.needs_reference and not GRPOLoss(beta=0.0).needs_reference


def test_dpo_loss_module_is_the_pure_function():
    x = torch.randn(4, 3)
    mask = torch.tensor([True, False, True])
    loss, _ = DPOLoss(beta=0.5, loss_type="ipo")(*x, mask=mask)
    assert torch.equal(loss, dpo_loss(*x, beta=0.5, loss_type="ipo", mask=mask)[0])
    assert DPOLoss().needs_reference


@pytest.mark.parametrize(
    ("cls", "kw", "match"),
    [
        (GRPOLoss, {"beta": -1.0}, r"`model.init_args.loss.init_args.beta` must be >= 0; got -1.0."),
        (
            GRPOLoss,
            {"epsilon": 0.0},
            r"`model.init_args.loss.init_args.epsilon` and .*epsilon_high` must be > 0",
        ),
        (
            GRPOLoss,
            {"aggregation": "sum"},
            r"loss.init_args.aggregation` must be 'sequence_mean' or 'token_mean'",
        ),
        (
            GRPOLoss,
            {"advantage_scale": "std"},
            r"loss.init_args.advantage_scale` must be 'group', 'batch' or",
        ),
        (DPOLoss, {"beta": 0.0}, r"`model.init_args.loss.init_args.beta` must be > 0 for DPO/IPO; got 0.0."),
        (
            DPOLoss,
            {"loss_type": "hinge"},
            r"loss.init_args.loss_type` must be 'sigmoid' or 'ipo'; got 'hinge'",
        ),
    ],
)
def test_hyperparameters_are_checked_when_built(cls, kw, match):
    with pytest.raises(ValueError, match=match):
        cls(**kw)
