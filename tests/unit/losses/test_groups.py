"""The group layout, ties, best/worst pairs and finite groups."""

import pytest
import torch

from pareto_lightning.losses.groups import (
    TIE_TOL,
    best_worst_pairs,
    check_groups,
    finite_groups,
    group_rows,
    group_size_problem,
    grouped,
    tied_groups,
)


def test_rows_of_one_prompt_are_consecutive():
    values = torch.arange(12.0).view(6, 2)  # [B*G, K] with B = 2, G = 3
    assert torch.equal(grouped(values, 3)[1], values[3:6])
    assert torch.equal(group_rows(torch.tensor([False, True]), 3), torch.tensor([False] * 3 + [True] * 3))


def test_one_tie_tolerance_for_advantages_and_pairs():
    u = torch.tensor([1.0, 1.0 + TIE_TOL / 2, 0.0, 1.0])
    assert tied_groups(u, 2).tolist() == [True, False]
    chosen, rejected, valid = best_worst_pairs(u, 2)
    assert valid.tolist() == [False, True]
    assert chosen.tolist()[1] == 3 and rejected.tolist()[1] == 2


def test_finite_groups_drop_a_whole_group():
    rewards = torch.tensor([[0.0, 1.0], [float("inf"), 0.0], [1.0, 1.0], [0.5, 0.5]])
    assert finite_groups(rewards, 2).tolist() == [False, True]


@pytest.mark.parametrize("size", [1, 0, True, 2.0])
def test_group_size_must_be_an_integer_of_at_least_two(size):
    assert "must be an integer >= 2" in group_size_problem(size)


def test_check_groups_errors():
    with pytest.raises(
        ValueError, match=r"`num_generations` \(completions per prompt, G\) must be an integer >= 2"
    ):
        check_groups(torch.zeros(4), 1)
    with pytest.raises(ValueError, match=r"got shape \(5,\) for num_generations=2"):
        check_groups(torch.zeros(5), 2)
    with pytest.raises(TypeError, match="floating-point"):
        check_groups(torch.zeros(4, dtype=torch.int64), 2)
