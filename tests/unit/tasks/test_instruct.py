"""build_instruct_lm and LexiconInstructLM: the stage's data (two-decimal weights, Multinomial compositions), that
the stage teaches the model to read w, the cache, seeding, and bad input."""

from __future__ import annotations

import pytest
import torch

from pareto_lightning import PreferencePolicy
from pareto_lightning.tasks import LexiconInstructLM, LexiconTask, LexiconTokenizer, build_instruct_lm
from pareto_lightning.tasks.instruct import linear_completions, two_decimal_weights
from pareto_lightning.tasks.vocabulary import LEXICONS

NAMES = ["helpfulness", "harmlessness"]
KEY = r"`model.init_args.policy.init_args.model.init_args"


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PARETO_LIGHTNING_CACHE", str(tmp_path / "cache"))


@pytest.mark.parametrize("k", [2, 3])
def test_two_decimal_weights_are_uniform_on_the_simplex_with_vertices(k):
    w = two_decimal_weights(20000, k, torch.Generator().manual_seed(0))  # [N, K]
    assert torch.equal((w * 100).round() / 100, w) and (w >= 0).all()
    torch.testing.assert_close(w.sum(-1), torch.ones(len(w), dtype=w.dtype), rtol=0, atol=1e-12)
    vertex = (w == 1).any(-1).double().mean().item()
    assert 0.09 < vertex < 0.115  # one row in ten is drawn as a vertex (plus the rare rounded draw)
    inner = w[~(w == 1).any(-1)]
    # Dirichlet(1) on K parts: each entry has mean 1/K and variance (K - 1) / (K^2 (K + 1)).
    torch.testing.assert_close(inner.mean(0), torch.full((k,), 1 / k, dtype=w.dtype), rtol=0, atol=0.01)
    var = (k - 1) / (k * k * (k + 1))
    torch.testing.assert_close(inner.var(0), torch.full((k,), var, dtype=w.dtype), rtol=0.05, atol=0)


def test_linear_completions_have_multinomial_counts():
    g = torch.Generator().manual_seed(0)
    weights = torch.tensor([[0.25, 0.75]]).expand(4000, 2)
    texts = linear_completions(weights, 16, g, NAMES)
    helpful = torch.tensor(
        [sum(word in LEXICONS["helpfulness"] for word in t.split()) for t in texts]
    ).double()
    assert all(len(t.split()) == 16 for t in texts)
    assert all(
        word in LEXICONS["helpfulness"] + LEXICONS["harmlessness"] for t in texts for word in t.split()
    )
    # Binomial(16, 0.25): mean 4, variance 3.
    assert helpful.mean().item() == pytest.approx(4.0, abs=0.1)
    assert helpful.var().item() == pytest.approx(3.0, rel=0.1)


def _helpful_share(model, w1: float, n: int = 16) -> float:
    task = LexiconTask()
    policy = PreferencePolicy(model, LexiconTokenizer(), objective_names=NAMES, max_new_tokens=17,
                              temperature=1.0, plain_prompt_template="{prompt}\n{preference}\n")  # fmt: skip
    rollout = policy.generate(["write a short note about the river"] * n, torch.tensor([[w1, 1 - w1]] * n), 2)
    raw, _ = task.reward()(rollout.prompts, rollout.completions)  # [2n, 2]
    counts = raw.pow(1 / 1.5) * 16  # words of each lexicon
    return (counts[:, 0] / counts.sum(-1).clamp_min(1)).mean().item()


def test_the_stage_teaches_the_model_to_read_w():
    torch.manual_seed(0)
    before = build_instruct_lm(steps=0, seed=0)
    after = build_instruct_lm(steps=250, seed=0)
    low, high = _helpful_share(after, 0.2), _helpful_share(after, 0.8)
    assert high - low > 0.3, (low, high)  # the base writes about 16 w_1 helpful words
    assert abs(_helpful_share(before, 0.8) - _helpful_share(before, 0.2)) < 0.2  # random weights ignore w


def test_the_stage_is_cached_and_seeded(tmp_path):
    a = build_instruct_lm(steps=3, batch_size=4, seed=5)
    files = list((tmp_path / "cache" / "lexicon_instruct").glob("*.pt"))
    assert len(files) == 1
    b = build_instruct_lm(steps=3, batch_size=4, seed=5)  # loaded from the file: the same weights
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    c = build_instruct_lm(steps=3, batch_size=4, seed=6)
    assert not torch.equal(a.model.embed_tokens.weight, c.model.embed_tokens.weight)
    assert len(list((tmp_path / "cache" / "lexicon_instruct").glob("*.pt"))) == 2
    build_instruct_lm(steps=3, batch_size=4, seed=7, cache=False)
    assert len(list((tmp_path / "cache" / "lexicon_instruct").glob("*.pt"))) == 2


def test_the_global_seed_sets_the_initialization():
    torch.manual_seed(11)
    a = build_instruct_lm(steps=0)
    b = build_instruct_lm(steps=0, seed=11)
    torch.manual_seed(12)
    c = build_instruct_lm(steps=0)
    assert torch.equal(a.model.embed_tokens.weight, b.model.embed_tokens.weight)
    assert not torch.equal(a.model.embed_tokens.weight, c.model.embed_tokens.weight)


def test_policy_refuses_another_prompt_layout():
    model = build_instruct_lm(steps=0, seed=0)
    layout = r"`model.init_args.policy.init_args.plain_prompt_template`='\{preference\}\\n\{prompt\}\\n'"
    with pytest.raises(
        ValueError,
        match=layout + r" but the model was trained on `model.init_args.policy.init_args.model.init_args",
    ):
        PreferencePolicy(model, LexiconTokenizer())
    with pytest.raises(
        ValueError,
        match=r"`model.init_args.policy.init_args.objective_names`=\['harmlessness', 'helpfulness'\]",
    ):
        PreferencePolicy(model, LexiconTokenizer(), objective_names=NAMES[::-1],
                         plain_prompt_template="{prompt}\n{preference}\n")  # fmt: skip
    ok = PreferencePolicy(model, LexiconTokenizer(), plain_prompt_template="{prompt}\n{preference}\n")
    assert ok.objective_names == NAMES


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"steps": -1},
            KEY + r".steps` must be an integer >= 0; got -1",
        ),
        (
            {"batch_size": 0},
            KEY + r".batch_size` must be an integer >= 1; got 0",
        ),
        (
            {"completion_words": 0},
            KEY + r".completion_words` must be an integer >= 1; got 0",
        ),
        (
            {"learning_rate": 0.0},
            KEY + r".learning_rate` must be > 0; got 0.0",
        ),
        (
            {"objective_names": ["helpfulness"]},
            KEY + r".objective_names` needs >= 2 names",
        ),
        ({"objective_names": ["helpfulness", "speed"]}, r"'speed' is not one of"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_instruct_lm(**kwargs)


def test_building_the_class_trains_nothing():
    torch.manual_seed(3)
    built = LexiconInstructLM(seed=3)
    assert all(torch.equal(p, q) for p, q in zip(built.parameters(), build_instruct_lm(steps=0, seed=3).parameters(),
                                                  strict=True))  # fmt: skip
    with pytest.raises(TypeError, match="steps"):
        LexiconInstructLM(steps=10)
    with pytest.raises(ValueError, match=KEY + r".objective_names` needs >= 2 names"):
        LexiconInstructLM(objective_names=["helpfulness"])


def test_build_is_the_initialization_then_the_stage():
    from pareto_lightning.tasks.instruct import instruct_stage

    built = build_instruct_lm(steps=4, batch_size=4, seed=9, cache=False)
    by_hand = LexiconInstructLM(seed=9)
    instruct_stage(by_hand, 9, 16, 4, 4, 3e-3)
    assert all(torch.equal(p, q) for p, q in zip(built.parameters(), by_hand.parameters(), strict=True))
