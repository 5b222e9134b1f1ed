"""A pretrained model's own generation_config cannot change what is sampled behind the log-probs' back."""

import pytest
import torch
from generation_helpers import (
    BACKEND_NAMES,
    EOS,
    PAD,
    PROMPTS,
    WEIGHTS,
    backends,
    fixed_distribution_model,
    make_policy,
)

from pareto_lightning.generation.model_config import unsupported_processing
from pareto_lightning.tasks import VOCABULARY

TOP, SECOND = 10, 11  # the two highest next-token logits, close enough for a repetition penalty to swap them


def _logits() -> torch.Tensor:
    logits = torch.zeros(len(VOCABULARY))
    logits[TOP], logits[SECOND] = 3.0, 2.9
    logits[[EOS, PAD]] = -30.0
    return logits


@pytest.mark.parametrize("name", BACKEND_NAMES)
def test_a_repetition_penalty_in_the_model_config_is_dropped_with_a_warning(name):
    model = fixed_distribution_model(_logits())
    model.generation_config.repetition_penalty = 1.5  # as Qwen2-Instruct's file sets 1.1
    with pytest.warns(UserWarning, match="RepetitionPenaltyLogitsProcessor; dropped"):
        policy = make_policy(model, backends()[name], max_new_tokens=6)
    assert unsupported_processing(policy.model, policy.model.generation_config) == []
    assert policy.model.generation_config.eos_token_id == EOS
    rollout = policy.generate(PROMPTS, WEIGHTS, 1, do_sample=False)
    # Greedy under the raw logits repeats the top token; a penalty of 1.5 would make the second token win
    # from the second step on (3.0 / 1.5 < 2.9).
    assert (rollout.completion_ids == TOP).all()


def test_a_model_config_without_extra_processing_warns_nothing(recwarn):
    make_policy(fixed_distribution_model(_logits()), backends()["hf"])
    assert not [w for w in recwarn if "generation_config" in str(w.message)]
