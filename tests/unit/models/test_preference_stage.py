"""The preference stage's maths (best-of-pool selection) against hand-worked values, and its distillation step."""

import pytest
import torch

from pareto_lightning import LinearScalarization, PreferencePolicy, SmoothTchebycheff, Tchebycheff
from pareto_lightning.models.preference_stage import (
    best_of_pool,
    distill,
    instruction_prompt,
    mixture_distillation_loss,
    stage_digest,
)
from pareto_lightning.tasks import LexiconLM, LexiconTokenizer

# Three completions of one prompt: simple, technical, and in between.
POOL = torch.tensor([[[0.9, 0.1], [0.1, 0.9], [0.6, 0.6]]])


def test_tchebycheff_selection_matches_the_hand_worked_maxima():
    # Weighted shortfalls w_k (1 - r_k), largest entry:
    #   w = (0.9, 0.1): (0.09, 0.09) -> 0.09, (0.81, 0.01) -> 0.81, (0.36, 0.04) -> 0.36: completion 0
    #   w = (0.5, 0.5): (0.05, 0.45) -> 0.45, (0.45, 0.05) -> 0.45, (0.20, 0.20) -> 0.20: completion 2
    #   w = (0.2, 0.8): (0.02, 0.72) -> 0.72, (0.18, 0.08) -> 0.18, (0.08, 0.32) -> 0.32: completion 1
    w = torch.tensor([[[0.9, 0.1], [0.5, 0.5], [0.2, 0.8]]])
    assert best_of_pool(POOL, w, Tchebycheff()).tolist() == [[0, 2, 1]]
    # mu = 0.1 is close enough to the max that the smooth version keeps every choice here.
    assert best_of_pool(POOL, w, SmoothTchebycheff(mu=0.1)).tolist() == [[0, 2, 1]]


def test_linear_selection_matches_the_hand_worked_sums():
    # w^T r at (0.5, 0.5): 0.5, 0.5, 0.6 -> the interior completion; at (0.6, 0.4): 0.58, 0.42, 0.6 -> still 2;
    # at (0.7, 0.3): 0.66, 0.34, 0.6 -> completion 0.
    w = torch.tensor([[[0.5, 0.5], [0.6, 0.4], [0.7, 0.3]]])
    assert best_of_pool(POOL, w, LinearScalarization()).tolist() == [[2, 2, 0]]


def test_each_prompt_picks_from_its_own_pool():
    rewards = torch.tensor([[[0.9, 0.1], [0.1, 0.9]], [[0.1, 0.9], [0.9, 0.1]]])  # prompt 1's pool is reversed
    w = torch.tensor([[[1.0, 0.0]], [[1.0, 0.0]]])
    assert best_of_pool(rewards, w, Tchebycheff()).tolist() == [[0], [1]]


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match=r"rewards \[P, N, K\]"):
        best_of_pool(POOL[0], torch.ones(1, 1, 2), Tchebycheff())


def test_instruction_prompt_with_and_without_a_system_message():
    class Plain:
        chat_template = None

    assert instruction_prompt("Explain rain.", None, Plain()) == "Explain rain.\n"
    assert instruction_prompt("Explain rain.", "Be brief.", Plain()) == "Be brief.\nExplain rain.\n"


def test_the_digest_follows_every_setting():
    assert stage_digest({"a": 1, "b": 2}) == stage_digest({"b": 2, "a": 1})
    assert stage_digest({"a": 1, "b": 2}) != stage_digest({"a": 1, "b": 3})


def _lora_policy():
    from peft import LoraConfig

    return PreferencePolicy(LexiconLM(seed=0), LexiconTokenizer(), objective_names=["helpfulness", "harmlessness"],
                            lora=LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))  # fmt: skip


def test_distill_moves_only_the_adapter_towards_the_blended_teachers():
    torch.manual_seed(0)
    policy = _lora_policy()
    tok = policy.tokenizer
    frozen = {n: p.detach().clone() for n, p in policy.named_parameters() if not p.requires_grad}
    completion = tok("thorough careful safe", add_special_tokens=False)["input_ids"]
    examples = [("write a note", torch.tensor(w), completion) for w in ([1.0, 0.0], [0.0, 1.0], [0.5, 0.5])]
    losses = distill(policy, examples * 4, ["helpful", "safe"], epochs=20, batch_size=6, learning_rate=1e-2,
                     generator=torch.Generator().manual_seed(0), log=lambda _: None)  # fmt: skip
    assert losses[0] > 0 and losses[-1] < 0.5 * losses[0]
    assert all(torch.equal(p, frozen[n]) for n, p in policy.named_parameters() if not p.requires_grad)
    assert not policy.model.training


def test_distill_needs_an_adapter():
    policy = PreferencePolicy(LexiconLM(seed=0), LexiconTokenizer(), objective_names=["helpfulness", "harmlessness"])
    with pytest.raises(ValueError, match=r"`model.init_args.policy.init_args.lora`"):
        distill(policy, [], ["a", "b"], 1, 1, 1e-3, torch.Generator())


def test_the_mixture_loss_is_zero_exactly_when_the_student_is_the_blend():
    teachers = torch.randn(2, 3, 4, 5)
    w = torch.tensor([[1.0, 0.0], [0.3, 0.7], [0.0, 1.0]])
    blend = torch.einsum("kbtv,bk->btv", teachers, w)
    mask = torch.ones(3, 4)
    assert mixture_distillation_loss(blend, teachers, w, mask, 0.7).abs().item() < 1e-6
    assert mixture_distillation_loss(teachers[0], teachers, w, mask, 0.7).item() > 1e-3
    # Masked positions do not count: a student wrong only there has zero loss.
    wrong = blend.clone()
    wrong[:, -1] += torch.randn(3, 5)
    mask[:, -1] = 0
    assert mixture_distillation_loss(wrong, teachers, w, mask, 0.7).abs().item() < 1e-6
