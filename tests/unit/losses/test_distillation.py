"""Best-of-pool selection against hand-worked values, and the mixture distillation loss."""

import pytest
import torch

from pareto_lightning import SmoothTchebycheff, Tchebycheff, WeightedSum
from pareto_lightning.losses.distillation import best_of_pool, mixture_distillation_loss

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
    assert best_of_pool(POOL, w, WeightedSum()).tolist() == [[2, 2, 0]]


def test_each_prompt_picks_from_its_own_pool():
    rewards = torch.tensor(
        [[[0.9, 0.1], [0.1, 0.9]], [[0.1, 0.9], [0.9, 0.1]]]
    )  # prompt 1's pool is reversed
    w = torch.tensor([[[1.0, 0.0]], [[1.0, 0.0]]])
    assert best_of_pool(rewards, w, Tchebycheff()).tolist() == [[0], [1]]


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match=r"rewards \[P, N, K\]"):
        best_of_pool(POOL[0], torch.ones(1, 1, 2), Tchebycheff())
    with pytest.raises(ValueError, match=r"K=2 objectives but weights K=3"):
        best_of_pool(POOL, torch.ones(1, 1, 3), Tchebycheff())


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


def test_the_mixture_loss_refuses_bad_input():
    teachers, w, mask = torch.zeros(2, 3, 4, 5), torch.ones(3, 2) / 2, torch.ones(3, 4)
    with pytest.raises(ValueError, match=r"temperature must be > 0; got 0"):
        mixture_distillation_loss(torch.zeros(3, 4, 5), teachers, w, mask, 0)
    with pytest.raises(
        ValueError, match=r"student \[b, T, V\], teachers \[K, b, T, V\] and weights \[b, K\]"
    ):
        mixture_distillation_loss(torch.zeros(3, 4, 6), teachers, w, mask)
    with pytest.raises(ValueError, match=r"weights \[b, K\]; got .* and \(3, 3\)"):
        mixture_distillation_loss(torch.zeros(3, 4, 5), teachers, torch.ones(3, 3) / 3, mask)


def test_the_top_level_exports_are_these_functions():
    import pareto_lightning

    assert pareto_lightning.best_of_pool is best_of_pool
    assert pareto_lightning.mixture_distillation_loss is mixture_distillation_loss
