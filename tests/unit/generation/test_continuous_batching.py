"""The continuous-batching backend refuses what it cannot do, naming the key, and replaces the logits guard
with a check of the weights."""

import pytest
import torch
from generation_helpers import make_policy
from transformers import LogitsProcessorList, MinNewTokensLengthLogitsProcessor

from pareto_lightning.finite import FiniteLogitsGuard, NonFiniteError
from pareto_lightning.generation import ContinuousBatchingGeneration, SamplingSettings
from pareto_lightning.tasks import LexiconLM, LexiconTokenizer

KEY = "model.init_args.policy.init_args.generation"
W = torch.tensor([[0.5, 0.5]])


def call(backend, model, processors=(), sharded=False):
    tok = LexiconTokenizer()
    enc = tok(["hi there"], return_tensors="pt")
    greedy, processors = SamplingSettings(do_sample=False), LogitsProcessorList(processors)
    return backend.generate(model, tok, enc["input_ids"], enc["attention_mask"], max_new_tokens=3, sampling=greedy,
                            logits_processor=processors, sharded=sharded)  # fmt: skip


def test_returns_the_new_tokens_padded_on_the_right():
    out = call(ContinuousBatchingGeneration(page_size=16), LexiconLM(seed=0), [FiniteLogitsGuard()])
    assert out.shape == (1, 3) and out.dtype == torch.long


def test_a_sharded_model_is_refused():
    with pytest.raises(
        ValueError, match=rf"`{KEY}`: ContinuousBatchingGeneration cannot generate with an FSDP2"
    ):
        call(ContinuousBatchingGeneration(), LexiconLM(seed=0), sharded=True)


def test_logits_processors_other_than_the_guard_are_refused():
    other = MinNewTokensLengthLogitsProcessor(1, 3, eos_token_id=2)
    with pytest.raises(
        ValueError, match=r"cannot run logits processors; got \['MinNewTokensLengthLogitsProcessor'\]"
    ):
        call(ContinuousBatchingGeneration(), LexiconLM(seed=0), [FiniteLogitsGuard(), other])


def test_processing_asked_by_the_generation_config_is_dropped_at_construction():
    model = LexiconLM(seed=0)
    model.generation_config.repetition_penalty = 1.3
    with pytest.warns(UserWarning, match=r"RepetitionPenaltyLogitsProcessor; dropped"):  # the policy drops it
        policy = make_policy(model, ContinuousBatchingGeneration(page_size=16))
    assert policy.generate(["hi"], W, 2).completion_ids.shape[0] == 2


def test_processing_asked_for_after_construction_is_refused_at_the_rollout():
    policy = make_policy(LexiconLM(seed=0), ContinuousBatchingGeneration(page_size=16))
    policy.model.generation_config.min_new_tokens = 4  # as the speed benchmark's forced lengths do
    with pytest.raises(ValueError, match=r"asks for \['MinNewTokensLengthLogitsProcessor'\]"):
        policy.generate(["hi"], W, 2)


def test_non_finite_weights_raise_before_generating():
    policy = make_policy(LexiconLM(seed=0), ContinuousBatchingGeneration(page_size=16))
    with torch.no_grad():
        policy.model.model.norm.weight[0] = float("nan")
    with pytest.raises(
        NonFiniteError, match=r"non-finite weights \(NaN/inf\) in 1 of \d+ tensors before generating"
    ):
        policy.generate(["hi"], W, 2)
    assert policy.model.training  # the policy's train/eval state is restored


def test_a_model_without_generate_batch_is_refused():
    class NoContinuousBatching(LexiconLM):
        generate_batch = None

    with pytest.raises(ValueError, match=rf"`{KEY}`: NoContinuousBatching has no `generate_batch`"):
        make_policy(NoContinuousBatching(seed=0), ContinuousBatchingGeneration())


def test_bad_settings_are_collected_and_named():
    key = KEY + ".init_args"
    expected = [
        f"`{key}.{name}` must be" for name in ("page_size", "num_blocks", "max_batch_tokens", "compile_level")
    ]
    with pytest.raises(ValueError, match=".*\n.*".join(expected)):
        ContinuousBatchingGeneration(page_size=2, num_blocks=0, max_batch_tokens=-1, compile_level=4)
