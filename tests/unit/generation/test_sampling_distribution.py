"""Sampled completions of every backend come from the distribution the policy asks for.

The model's next-token logits are fixed (a zero output weight plus a bias), so every sampled token is a draw
from ``softmax(bias / temperature)`` cut to its top-p nucleus; a chi-square test compares the counts.
"""

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
from scipy.stats import chisquare

from pareto_lightning.tasks import VOCABULARY

TEMPERATURE, TOP_P, NEW_TOKENS, G = 0.7, 0.9, 16, 40


def nucleus_distribution(logits: torch.Tensor, temperature: float, top_p: float) -> torch.Tensor:
    """``softmax(logits / temperature)`` with the tokens outside the top-p nucleus removed, renormalized.

    Written as transformers' ``TopPLogitsWarper`` defines the nucleus: in ascending order of probability, a token
    is dropped while the cumulative probability up to it is at most ``1 - top_p``.
    """
    probs = torch.softmax(logits.double() / temperature, -1)  # [V]
    ascending, order = probs.sort()
    dropped = ascending.cumsum(0) <= 1 - top_p  # [V] in ascending order
    out = probs.clone()
    out[order[dropped]] = 0.0
    return out / out.sum()


def fixed_logits() -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    logits = 1.5 * torch.randn(len(VOCABULARY), generator=generator)  # [V]
    logits[[EOS, PAD]] = -30.0  # completions run to full length
    return logits


def sample_counts(name: str, temperature: float = TEMPERATURE, seed: int = 0) -> torch.Tensor:
    policy = make_policy(fixed_distribution_model(fixed_logits()), backends()[name], max_new_tokens=NEW_TOKENS,
                         temperature=temperature, top_p=TOP_P)  # fmt: skip
    torch.manual_seed(seed)
    rollout = policy.generate(PROMPTS, WEIGHTS, G)  # 3 x 40 completions x 16 tokens = 1,920 draws
    assert rollout.completion_mask.all()  # every completion has its 16 tokens
    return torch.bincount(rollout.completion_ids.flatten(), minlength=len(VOCABULARY))  # [V]


def chi_square_p(counts: torch.Tensor, expected_probs: torch.Tensor) -> float:
    """p-value of the counts under the distribution, over the tokens it can draw; tokens expecting fewer than 5
    draws are pooled into one cell."""
    possible = expected_probs > 0
    expected, counts = expected_probs[possible] * counts.sum(), counts[possible].double()
    big = expected >= 5
    observed = torch.cat([counts[big], counts[~big].sum()[None]])
    wanted = torch.cat([expected[big], expected[~big].sum()[None]])
    if not (~big).any():
        observed, wanted = counts, expected
    return float(chisquare(observed.numpy(), wanted.numpy()).pvalue)


@pytest.mark.parametrize("name", BACKEND_NAMES)
def test_samples_follow_temperature_and_top_p(name):
    expected = nucleus_distribution(fixed_logits(), TEMPERATURE, TOP_P)  # [V]
    counts = sample_counts(name)
    assert counts[expected == 0].sum() == 0  # nothing outside the nucleus
    assert chi_square_p(counts, expected) > 1e-3


def test_the_chi_square_check_detects_a_nearby_temperature():
    # The same samples checked against temperature 0.8 (its nucleus holds the 0.7 one): the test can fail.
    counts = sample_counts("hf")
    wrong = nucleus_distribution(fixed_logits(), 0.8, TOP_P)
    assert counts[wrong == 0].sum() == 0 and chi_square_p(counts, wrong) < 1e-4


@pytest.mark.parametrize("name", ["static", "static_compiled"])
def test_static_cache_draws_the_same_tokens_from_the_same_seed(name):
    # Same logits processors, same sampler, same random stream: the very same draws as the default backend.
    assert torch.equal(sample_counts(name, seed=5), sample_counts("hf", seed=5))
