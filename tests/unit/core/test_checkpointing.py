import pickle

import pytest
import torch
from torch import nn

from pareto_lightning import GRPOModule, SmoothTchebycheff
from pareto_lightning.checkpointing import leave_out_of_checkpoints
from pareto_lightning.tasks import LexiconTask


def _root() -> nn.Module:
    root = nn.Module()
    root.frozen, root.trained = nn.Linear(2, 2), nn.Linear(2, 1)
    leave_out_of_checkpoints(root, "frozen.")
    return root


def test_left_out_entries_load_through_a_wrapper_and_real_gaps_are_still_refused():
    wrapper = nn.Module()
    wrapper.module = _root()  # as DDP holds the LightningModule: keys "module.<...>"
    state = wrapper.state_dict()
    assert sorted(state) == ["module.trained.bias", "module.trained.weight"]
    frozen = wrapper.module.frozen.weight.clone()
    wrapper.load_state_dict({k: torch.zeros_like(v) for k, v in state.items()}, strict=True)
    assert torch.equal(wrapper.module.trained.weight, torch.zeros(1, 2))
    assert torch.equal(wrapper.module.frozen.weight, frozen)  # kept its own value
    del state["module.trained.bias"]
    with pytest.raises(RuntimeError, match=r'Missing key\(s\) in state_dict: "module.trained.bias"'):
        wrapper.load_state_dict(state, strict=True)


def test_an_alignment_module_still_pickles():
    # Lightning's ddp_spawn launcher and torch.save(module) pickle the module with its hooks.
    task = LexiconTask()
    module = GRPOModule(task.policy(max_new_tokens=4), task.reward(), SmoothTchebycheff(), num_generations=2)
    copy = pickle.loads(pickle.dumps(module))
    assert not any(k.startswith("reward.reward_modules.") for k in copy.state_dict())
    assert copy.state_dict().keys() == module.state_dict().keys()
