"""Every backend's greedy completions equal ``HFGeneration``'s token for token, in the same ``Rollout``."""

import pytest
import torch
from generation_helpers import BACKEND_NAMES, PROMPTS, WEIGHTS, backends, make_policy, tiny_llama

from pareto_lightning.generation import StaticCacheGeneration
from pareto_lightning.tasks import LexiconLM

MODELS = {"qwen2": lambda: LexiconLM(seed=3), "llama": lambda: tiny_llama(seed=3)}


@pytest.mark.parametrize("model_name", list(MODELS))
@pytest.mark.parametrize("name", BACKEND_NAMES[1:])
def test_greedy_completions_equal_the_default_backend(model_name, name):
    model = MODELS[model_name]()
    reference = make_policy(model, backends()["hf"]).generate(PROMPTS, WEIGHTS, 2, do_sample=False)
    rollout = make_policy(model, backends()[name]).generate(PROMPTS, WEIGHTS, 2, do_sample=False)
    assert torch.equal(rollout.prompt_ids, reference.prompt_ids)  # the policy's own padding, not the bucket's
    assert torch.equal(rollout.prompt_mask, reference.prompt_mask)
    assert rollout.completion_ids.shape == reference.completion_ids.shape
    assert torch.equal(rollout.completion_ids, reference.completion_ids)
    assert torch.equal(rollout.completion_mask, reference.completion_mask)
    assert rollout.completions == reference.completions
    assert torch.equal(rollout.weights, reference.weights) and rollout.prompts == reference.prompts
    assert len(set(rollout.completions)) > 1  # the prompts lead to different completions: a real comparison


def test_bucketing_stops_at_what_the_model_holds():
    # LexiconLM holds 128 positions; with 16 new tokens a 64-token bucket would fit, a 1000-token one not.
    model = LexiconLM(seed=3)
    reference = make_policy(model, backends()["hf"], max_new_tokens=16).generate(PROMPTS, WEIGHTS, 1, False)
    wide = make_policy(model, StaticCacheGeneration(prompt_bucket=1000, compile=False), max_new_tokens=16)
    assert torch.equal(
        wide.generate(PROMPTS, WEIGHTS, 1, do_sample=False).completion_ids, reference.completion_ids
    )
