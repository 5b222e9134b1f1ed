"""The policy's ``generation`` argument: the default, the type check, and one YAML line to switch it."""

import pytest
import torch
from jsonargparse import ArgumentParser

from pareto_lightning.generation import HFGeneration, StaticCacheGeneration
from pareto_lightning.policy import PreferencePolicy
from pareto_lightning.tasks import LexiconLM, LexiconTokenizer

CONFIG = """
policy:
  class_path: pareto_lightning.PreferencePolicy
  init_args:
    model: {class_path: pareto_lightning.tasks.LexiconLM, init_args: {seed: 0}}
    tokenizer: {class_path: pareto_lightning.tasks.LexiconTokenizer}
    max_new_tokens: 4
"""


def test_the_default_backend_is_hf_generate():
    assert type(PreferencePolicy(LexiconLM(seed=0), LexiconTokenizer()).generation) is HFGeneration


def test_a_backend_that_is_not_one_is_refused_with_its_key():
    with pytest.raises(TypeError, match=r"`model.init_args.policy.init_args.generation` must be a "
                                        r"pareto_lightning.generation.GenerationBackend"):  # fmt: skip
        PreferencePolicy(LexiconLM(seed=0), LexiconTokenizer(), generation="static")


def test_one_yaml_line_switches_the_backend():
    parser = ArgumentParser()
    parser.add_argument("--policy", type=PreferencePolicy)
    line = ("    generation: {class_path: pareto_lightning.generation.StaticCacheGeneration, "
            "init_args: {prompt_bucket: 32, compile: false}}\n")  # fmt: skip
    default = parser.instantiate_classes(parser.parse_string(CONFIG)).policy
    switched = parser.instantiate_classes(parser.parse_string(CONFIG + line)).policy
    assert type(default.generation) is HFGeneration
    assert type(switched.generation) is StaticCacheGeneration and switched.generation.prompt_bucket == 32
    w = torch.tensor([[0.4, 0.6]])
    one, two = (
        default.generate(["hi"], w, 1, do_sample=False),
        switched.generate(["hi"], w, 1, do_sample=False),
    )
    assert torch.equal(one.completion_ids, two.completion_ids)  # same seed-0 weights, same greedy completion
