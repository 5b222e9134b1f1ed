"""The loss, the optimizer and the schedule are injected into the algorithm modules, with today's defaults."""

from functools import partial
from types import SimpleNamespace

import pytest
import torch

from pareto_lightning import (
    DPOLoss,
    GRPOLoss,
    GRPOModule,
    MOODPOModule,
    SmoothTchebycheff,
    WeightedSum,
)
from pareto_lightning.algorithms.optim import warmup_cosine
from pareto_lightning.algorithms.reuse import FirstIteration, RolloutReuse, ScoredRollout
from pareto_lightning.rollout import Rollout
from pareto_lightning.tasks import LexiconTask


def _grpo(**kw):
    task = LexiconTask()
    return GRPOModule(
        task.policy(max_new_tokens=2), task.reward(), SmoothTchebycheff(), num_generations=2, **kw
    )


def test_default_losses_are_built_from_the_module_arguments():
    module = _grpo(beta=0.05, epsilon=0.1, aggregation="token_mean")
    assert isinstance(module.loss, GRPOLoss) and module.beta == module.loss.beta == 0.05
    assert (module.loss.epsilon, module.loss.aggregation) == (0.1, "token_mean")
    task = LexiconTask()
    dpo = MOODPOModule(task.policy(max_new_tokens=2), task.reward(), WeightedSum(), loss_type="ipo")
    assert isinstance(dpo.loss, DPOLoss) and dpo.loss.loss_type == "ipo" and dpo.beta == 0.1


def test_an_injected_loss_is_used():
    loss = GRPOLoss(beta=0.0, advantage_scale="none")
    module = _grpo(loss=loss)
    assert module.loss is loss and module.beta == 0.0 and not module.loss.needs_reference


def test_a_loss_value_set_twice_is_refused():
    with pytest.raises(ValueError, match=r"`model.init_args.beta` and `model.init_args.loss` both set the loss's "
                       r"`beta`: set it once, as `model.init_args.loss.init_args.beta`"):  # fmt: skip
        _grpo(beta=0.05, loss=GRPOLoss(beta=0.05))


def _configured(module, max_steps=10):
    module._trainer = SimpleNamespace(max_steps=max_steps)
    return module.configure_optimizers()


def test_default_optimizer_and_schedule_are_adamw_with_warmup_and_cosine():
    module = _grpo(learning_rate=1e-3, weight_decay=0.01, warmup_steps=2, min_lr_ratio=0.5)
    config = _configured(module)
    optimizer, scheduler = config["optimizer"], config["lr_scheduler"]["scheduler"]
    assert type(optimizer) is torch.optim.AdamW and config["lr_scheduler"]["interval"] == "step"
    assert optimizer.defaults["lr"] == 1e-3 and optimizer.defaults["weight_decay"] == 0.01
    assert [scheduler.lr_lambdas[0](s) for s in range(12)] == [
        warmup_cosine(s, 2, 10, 0.5) for s in range(12)
    ]
    trained = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert trained == {id(p) for p in module.policy.parameters() if p.requires_grad}


def test_injected_optimizer_and_schedule():
    with pytest.warns(
        UserWarning, match="`model.init_args.learning_rate` and `model.init_args.weight_decay` set"
    ):
        module = _grpo(learning_rate=1e-3, optimizer=partial(torch.optim.SGD, lr=0.1))
    config = _configured(module)
    assert type(config["optimizer"]) is torch.optim.SGD and config["optimizer"].defaults["lr"] == 0.1
    assert config["lr_scheduler"]["scheduler"].lr_lambdas[0](10) == 0.0  # the default cosine, on SGD's lr
    module = _grpo(lr_scheduler=partial(torch.optim.lr_scheduler.StepLR, step_size=3))
    assert type(_configured(module)["lr_scheduler"]["scheduler"]) is torch.optim.lr_scheduler.StepLR


def test_rollouts_kept_under_their_older_checkpoint_name_still_load():
    rollout = Rollout(["p", "p"], torch.zeros(2, 1), torch.ones(2, 1), torch.zeros(2, 3), torch.ones(2, 3),
                      ["a", "b"], torch.tensor([[0.5, 0.5]] * 2), group_size=2)  # fmt: skip
    first = FirstIteration(advantages=torch.tensor([1.0, -1.0]), old_logp=torch.zeros(2, 3), ref_logp=None)
    reuse = RolloutReuse(2)
    reuse.put(0, ScoredRollout(rollout, torch.zeros(2, 2), torch.zeros(2, 2), torch.zeros(2), 0, first))
    state = reuse.state_dict()
    older = {0: {**{k: v for k, v in state[0].items() if k != "first"}, "loss_state": state[0]["first"]}}
    for saved in (state, older):
        loaded = RolloutReuse(2)
        loaded.load_state_dict(saved)
        kept = loaded.get(step=1, micro=0)
        assert torch.equal(kept.first.advantages, first.advantages) and kept.first.ref_logp is None
