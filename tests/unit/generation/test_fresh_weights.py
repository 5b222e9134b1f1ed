"""No backend generates with stale weights: after an optimizer step, and after an in-place interpolation of the
weights as MetaLoop's Reptile step does (``param.data.lerp_``), the next rollout is the one the default backend
gives on the new weights. The compiled decode step reads them without compiling again."""

import copy

import pytest
import torch
from generation_helpers import (
    BACKEND_NAMES,
    COMPILES,
    PROMPTS,
    WEIGHTS,
    backends,
    make_policy,
    register_counting_backend,
)

from pareto_lightning.generation import HFGeneration, StaticCacheGeneration
from pareto_lightning.tasks import LexiconLM


def greedy(policy):
    return policy.generate(PROMPTS, WEIGHTS, 1, do_sample=False).completion_ids


def check_follows_the_weights(policy, reference, previous):
    now = greedy(policy)
    assert not torch.equal(now, previous)  # the change of weights changed the greedy completions ...
    assert torch.equal(now, greedy(reference))  # ... exactly as the default backend sees them
    return now


def change_by_an_optimizer_step(policy, rollout_ids):
    optimizer = torch.optim.AdamW(policy.model.parameters(), lr=0.05)
    rollout = policy.generate(PROMPTS, WEIGHTS, 1, do_sample=False)
    assert torch.equal(rollout.completion_ids, rollout_ids)
    policy.log_probs(rollout).sum().backward()  # make the current greedy completions less likely
    optimizer.step()
    optimizer.zero_grad()


def change_by_interpolation(policy):
    target = LexiconLM(seed=11)
    with torch.no_grad():
        for param, other in zip(policy.model.parameters(), target.parameters(), strict=True):
            param.data.lerp_(other.data, 0.5)  # in place, as Reptile interpolates


def run_weight_changes(policy):
    reference = make_policy(policy.model, HFGeneration())  # the same model object
    before = greedy(policy)
    assert torch.equal(before, greedy(reference))
    change_by_an_optimizer_step(policy, before)
    after_step = check_follows_the_weights(policy, reference, before)
    change_by_interpolation(policy)
    check_follows_the_weights(policy, reference, after_step)


@pytest.mark.parametrize("name", BACKEND_NAMES)
def test_next_rollout_sees_an_optimizer_step_and_an_interpolation(name):
    run_weight_changes(make_policy(LexiconLM(seed=1), backends()[name]))


def test_the_compiled_step_reads_new_weights_without_compiling_again():
    backend = StaticCacheGeneration(compile_backend=register_counting_backend(), compile_mode="default")
    policy = make_policy(LexiconLM(seed=1), backend)
    COMPILES.clear()
    greedy(policy)
    compiled = len(COMPILES)
    assert compiled >= 1  # the decode step did go through torch.compile
    run_weight_changes(policy)
    assert len(COMPILES) == compiled  # the weights are graph inputs, not constants baked into the graph


class StaleCopy(HFGeneration):
    """A broken backend: it keeps a copy of the model from its first rollout (what a backend holding its own
    weights, like a vLLM engine, does without a weight sync)."""

    def generate(self, model, *args, **kwargs):
        if not hasattr(self, "copy"):
            self.copy = copy.deepcopy(model)
        return super().generate(self.copy, *args, **kwargs)


def test_the_check_catches_a_backend_with_stale_weights():
    with pytest.raises(AssertionError):
        run_weight_changes(make_policy(LexiconLM(seed=1), StaleCopy()))
