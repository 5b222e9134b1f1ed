"""The static-cache backend: prompt buckets keep one compiled graph; the logits guard still runs; bad settings
are refused with their config key."""

import pytest
import torch
from generation_helpers import COMPILES, make_policy, register_counting_backend

from pareto_lightning.finite import NonFiniteError
from pareto_lightning.generation import StaticCacheGeneration
from pareto_lightning.generation.base import bucketed_length
from pareto_lightning.tasks import LexiconLM, LexiconTokenizer

W = torch.tensor([[0.5, 0.5]])
SHORT, LONGER = "hi", "write a note about the river and the city"


def compiles_per_rollout(prompt_bucket):
    backend = StaticCacheGeneration(
        prompt_bucket=prompt_bucket, compile_backend=register_counting_backend(), compile_mode="default"
    )
    policy = make_policy(LexiconLM(seed=0), backend)
    COMPILES.clear()
    counts = []
    for prompt in (SHORT, SHORT, LONGER):
        policy.generate([prompt], W, 2, do_sample=False)
        counts.append(len(COMPILES))
    return counts, policy


def test_prompts_of_one_bucket_share_the_compiled_graph():
    counts, policy = compiles_per_rollout(64)
    lengths = [
        len(LexiconTokenizer()(t)["input_ids"])
        for t in policy.conditioned_prompts([SHORT, LONGER], W.repeat(2, 1))
    ]
    assert lengths[0] != lengths[1] and bucketed_length(lengths[0], 64) == bucketed_length(lengths[1], 64)
    assert counts[0] >= 1 and counts[2] == counts[0]  # the longer prompt reused the graph


def test_without_buckets_a_new_prompt_length_compiles_again():
    counts, _ = compiles_per_rollout(1)
    assert counts[1] == counts[0] and counts[2] > counts[1]


def test_the_finite_logits_guard_still_runs_in_the_compiled_step():
    model = LexiconLM(seed=0)
    policy = make_policy(model, StaticCacheGeneration(compile_backend="aot_eager", compile_mode="default"))
    policy.generate([SHORT], W, 2)
    with torch.no_grad():
        model.model.norm.weight.fill_(float("nan"))
    with pytest.raises(NonFiniteError, match="non-finite logits"):
        policy.generate([SHORT], W, 2)
    assert policy.model.training  # the policy's train/eval state is restored


def test_bad_settings_are_collected_and_named():
    key = "model.init_args.policy.init_args.generation.init_args"
    with pytest.raises(ValueError, match=rf"`{key}.prompt_bucket` must be .*\n.*`{key}.compile_mode` must be .*\n"
                                         rf".*`{key}.compile_backend` must be"):  # fmt: skip
        StaticCacheGeneration(prompt_bucket=0, compile_mode="fast", compile_backend="nope")
    with pytest.raises(ValueError, match=rf"`{key}.compile` must be true or false"):
        StaticCacheGeneration(compile="yes")


def test_a_model_without_static_cache_support_is_refused_at_construction():
    class NoStaticCache(LexiconLM):
        _can_compile_fullgraph = False

    with pytest.raises(ValueError, match=r"`model.init_args.policy.init_args.generation`: NoStaticCache does not "
                                         r"declare support for a static KV cache"):  # fmt: skip
        make_policy(NoStaticCache(seed=0), StaticCacheGeneration())


def test_inductor_freezing_is_refused(monkeypatch):
    monkeypatch.setattr(torch._inductor.config, "freezing", True)
    with pytest.raises(ValueError, match=r"generation.init_args.compile` is true while .*freezing"):
        make_policy(LexiconLM(seed=0), StaticCacheGeneration())
    make_policy(LexiconLM(seed=0), StaticCacheGeneration(compile=False))  # nothing compiled, nothing frozen
