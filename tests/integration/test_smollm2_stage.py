"""``recipes/smollm2/preference_stage.py``: the pool sampler, the pool's cache key, and the distillation step on a
tiny model (its maths is tested in tests/unit/losses/test_distillation.py)."""

import pytest
import torch
from smollm2_artifacts import recipe_script

from pareto_lightning import PreferencePolicy
from pareto_lightning.tasks import LexiconLM, LexiconTokenizer

stage = recipe_script("preference_stage")


def _lora_policy():
    from peft import LoraConfig

    return PreferencePolicy(LexiconLM(seed=0), LexiconTokenizer(), objective_names=["helpfulness", "harmlessness"],
                            lora=LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))  # fmt: skip


def test_the_pool_has_every_prompt_under_every_instruction():
    torch.manual_seed(0)
    policy = PreferencePolicy(LexiconLM(seed=0), LexiconTokenizer(), max_new_tokens=3)
    pool = stage.sample_pool(policy, ["write a note", "say hi"], ["helpful", None], samples=2)
    assert [(r["prompt"], r["instruction"]) for r in pool] == [(0, 0)] * 2 + [(1, 0)] * 2 + [(0, 1)] * 2 + [
        (1, 1)
    ] * 2
    assert all(len(r["ids"]) <= 3 and isinstance(r["text"], str) for r in pool)


def test_the_digest_follows_every_setting():
    assert stage.stage_digest({"a": 1, "b": 2}) == stage.stage_digest({"b": 2, "a": 1})
    assert stage.stage_digest({"a": 1, "b": 2}) != stage.stage_digest({"a": 1, "b": 3})


def test_the_defaults_follow_the_cache_root(tmp_path, monkeypatch):
    monkeypatch.setenv("PARETO_LIGHTNING_CACHE", str(tmp_path))
    assert stage.default_base() == str(tmp_path / "smollm2-135m-instruct")
    assert stage.default_out() == str(tmp_path / "smollm2-135m-preference")


def test_distill_moves_only_the_adapter_towards_the_blended_teachers():
    torch.manual_seed(0)
    policy = _lora_policy()
    tok = policy.tokenizer
    frozen = {n: p.detach().clone() for n, p in policy.named_parameters() if not p.requires_grad}
    completion = tok("thorough careful safe", add_special_tokens=False)["input_ids"]
    examples = [("write a note", torch.tensor(w), completion) for w in ([1.0, 0.0], [0.0, 1.0], [0.5, 0.5])]
    losses = stage.distill(policy, examples * 4, ["helpful", "safe"], epochs=20, batch_size=6, learning_rate=1e-2,
                           generator=torch.Generator().manual_seed(0), log=lambda _: None)  # fmt: skip
    assert losses[0] > 0 and losses[-1] < 0.5 * losses[0]
    assert all(torch.equal(p, frozen[n]) for n, p in policy.named_parameters() if not p.requires_grad)
    assert not policy.model.training


def test_distill_needs_an_adapter():
    policy = PreferencePolicy(
        LexiconLM(seed=0), LexiconTokenizer(), objective_names=["helpfulness", "harmlessness"]
    )
    with pytest.raises(ValueError, match=r"`model.init_args.policy.init_args.lora`"):
        stage.distill(policy, [], ["a", "b"], 1, 1, 1e-3, torch.Generator())


def test_a_missing_recipe_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"`--recipe`: no file"):
        stage.recipe_components(str(tmp_path / "none.yaml"), str(tmp_path), 0)
