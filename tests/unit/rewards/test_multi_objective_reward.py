import pytest
import torch
from torch import nn

from pareto_lightning.rewards import (
    MaxNormalizer,
    MultiObjectiveReward,
    RewardFunction,
    TanhNormalizer,
    ZScoreNormalizer,
)


def num_words(prompts: list[str], completions: list[str]) -> torch.Tensor:
    return torch.tensor([float(len(c.split())) for c in completions])


def mentions_prompt(prompts, completions):
    # untyped, returns a list: plain callables qualify too
    return [float(p in c) for p, c in zip(prompts, completions, strict=True)]


class LetterCount(nn.Module):
    """A reward function that is a module with a parameter and dropout (to see devices and eval mode)."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(2.0))
        self.dropout = nn.Dropout(0.5)

    def forward(self, prompts: list[str], completions: list[str]) -> torch.Tensor:
        counts = torch.tensor([float(len(c)) for c in completions], device=self.scale.device)
        return self.dropout(counts) * self.scale


PROMPTS = ["cat", "dog", "cat"]
COMPLETIONS = ["the cat sat", "no", "a b c d"]


def test_raw_and_normalized_hand_worked():
    reward = MultiObjectiveReward(
        [num_words, mentions_prompt], names=["length", "on_topic"], normalizer=MaxNormalizer()
    )
    raw, normalized = reward(PROMPTS, COMPLETIONS)
    torch.testing.assert_close(raw, torch.tensor([[3.0, 1.0], [1.0, 0.0], [4.0, 0.0]]))
    torch.testing.assert_close(normalized, torch.tensor([[0.75, 1.0], [0.25, 0.0], [1.0, 0.0]]))
    assert raw.dtype == normalized.dtype == torch.float32
    assert reward.num_objectives == 2 and reward.names == ["length", "on_topic"]


def test_without_normalizer_the_normalized_output_is_the_raw_tensor():
    reward = MultiObjectiveReward([num_words])
    raw, normalized = reward(PROMPTS, COMPLETIONS)
    assert normalized is raw
    assert reward.names == ["objective_0"]


def test_module_functions_are_registered_and_stay_in_eval_mode():
    letters = LetterCount()
    reward = MultiObjectiveReward([num_words, letters], normalizer=ZScoreNormalizer())
    assert list(reward.reward_modules) == [letters]
    assert "reward_modules.0.scale" in reward.state_dict()  # moves with .to() and the LightningModule
    assert not letters.training
    reward.train()
    assert reward.training and reward.normalizer.training and not letters.training
    raw1, _ = reward(PROMPTS, COMPLETIONS)
    raw2, _ = reward(PROMPTS, COMPLETIONS)
    assert torch.equal(raw1, raw2)  # dropout is off
    torch.testing.assert_close(raw1[:, 1], torch.tensor([22.0, 4.0, 14.0]))
    reward.double()  # a dtype move reaches the registered module
    assert letters.scale.dtype == torch.float64


def test_normalizer_updates_only_in_training_mode():
    reward = MultiObjectiveReward([num_words], normalizer=MaxNormalizer())
    reward.eval()
    _, normalized = reward(PROMPTS, COMPLETIONS)
    assert int(reward.normalizer.num_updates) == 0 and torch.equal(
        normalized[:, 0], torch.tensor([3.0, 1.0, 4.0])
    )
    reward.train()
    reward(PROMPTS, COMPLETIONS)
    assert int(reward.normalizer.num_updates) == 1
    assert "normalizer.max_abs" in reward.state_dict()


def test_outputs_are_detached():
    weight = torch.tensor(1.0, requires_grad=True)
    reward = MultiObjectiveReward([lambda p, c: torch.ones(len(c)) * weight])
    raw, _ = reward(["a"], ["b"])
    assert not raw.requires_grad


def test_plain_functions_and_modules_are_reward_functions():
    assert isinstance(num_words, RewardFunction)
    assert isinstance(LetterCount(), RewardFunction)
    assert not isinstance(3, RewardFunction)


def test_check_num_objectives():
    reward = MultiObjectiveReward([num_words, mentions_prompt])
    reward.check_num_objectives(2, key="data.init_args.num_objectives")
    with pytest.raises(
        ValueError,
        match=r"^the preference dimension K=3 \(data.init_args.num_objectives\) must equal the number of "
        r"reward functions 2 \(model.init_args.reward\)",
    ):
        reward.check_num_objectives(3, key="data.init_args.num_objectives")


def test_yaml_config_parses_with_modules_and_untyped_functions():
    jsonargparse = pytest.importorskip("jsonargparse")
    parser = jsonargparse.ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(MultiObjectiveReward, "reward")
    config = (
        "reward:\n"
        "  functions:\n"
        f"    - class_path: {__name__}.LetterCount\n"
        f"    - {__name__}.mentions_prompt\n"
        "  names: [letters, on_topic]\n"
        "  normalizer:\n"
        "    class_path: pareto_lightning.rewards.TanhNormalizer\n"
        "    init_args: {scale: 2.0}\n"
    )
    reward = parser.instantiate(parser.parse_string(config)).reward
    assert isinstance(reward.reward_modules[0], LetterCount) and isinstance(reward.normalizer, TanhNormalizer)
    assert reward.names == ["letters", "on_topic"]


# ---------------------------------------------------------------------------------------------------- errors
def test_construction_errors():
    key = "model.init_args.reward.init_args"
    with pytest.raises(
        ValueError, match=rf"`names` \({key}.names\) must have one entry per reward function: got 3 "
    ):
        MultiObjectiveReward([num_words, mentions_prompt], names=["a", "b", "c"])
    with pytest.raises(ValueError, match="got 1 names for 2 functions"):
        MultiObjectiveReward([num_words, mentions_prompt], names=["a"])
    with pytest.raises(ValueError, match=r"`names` .* must be unique; got \['a', 'a'\]"):
        MultiObjectiveReward([num_words, mentions_prompt], names=["a", "a"])
    with pytest.raises(
        ValueError, match=rf"`functions` must list at least one reward function \({key}.functions\)"
    ):
        MultiObjectiveReward([])
    with pytest.raises(
        TypeError, match=rf"reward function 1 \({key}.functions\[1\]\) must be callable .* got str"
    ):
        MultiObjectiveReward([num_words, "helpfulness"])
    with pytest.raises(
        TypeError, match=rf"`normalizer` \({key}.normalizer\) must be a RewardNormalizer or None"
    ):
        MultiObjectiveReward([num_words], normalizer=nn.Identity())


def test_wrong_length_names_the_function_and_both_lengths():
    reward = MultiObjectiveReward([num_words, lambda p, c: torch.zeros(2)], names=["length", "broken"])
    with pytest.raises(
        ValueError,
        match=r"reward function 1 \('broken', .*<lambda>\) must return a 1-D tensor of length N=3 .*got "
        r"shape \(2,\)",
    ):
        reward(PROMPTS, COMPLETIONS)


def test_bad_return_values():
    two_d = MultiObjectiveReward([lambda p, c: torch.zeros(len(c), 1)])
    with pytest.raises(ValueError, match=r"must return a 1-D tensor of length N=3.*got shape \(3, 1\)"):
        two_d(PROMPTS, COMPLETIONS)
    words = MultiObjectiveReward([lambda p, c: ["good"] * len(c)], names=["text"])
    with pytest.raises(
        TypeError, match=r"reward function 0 \('text'.* must return a Tensor\[N\] or a list of N floats"
    ):
        words(PROMPTS, COMPLETIONS)
    complex_scores = MultiObjectiveReward([lambda p, c: torch.zeros(len(c), dtype=torch.complex64)])
    with pytest.raises(TypeError, match="must return real-valued scores; got dtype torch.complex64"):
        complex_scores(PROMPTS, COMPLETIONS)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_reward_names_the_objective(bad):
    reward = MultiObjectiveReward(
        [num_words, lambda p, c: [0.0, bad, 1.0]], names=["length", "safety"], normalizer=MaxNormalizer()
    )
    with pytest.raises(ValueError, match=r"rewards of objective 1 \('safety'\) contain 1 NaN/inf value\(s\)"):
        reward(PROMPTS, COMPLETIONS)
    assert int(reward.normalizer.num_updates) == 0


def test_bad_inputs():
    reward = MultiObjectiveReward([num_words])
    with pytest.raises(ValueError, match="got an empty list of prompts"):
        reward([], [])
    with pytest.raises(ValueError, match="got 2 prompts but 1 completions; pass one prompt per completion"):
        reward(["a", "b"], ["c"])


# ------------------------------------------------------------------------------ names against the policy's
def _zeros(prompts, completions):
    return [0.0] * len(completions)


@pytest.mark.parametrize(
    ("reward_names", "match"),
    [
        (
            ["harmlessness", "helpfulness"],
            r"(?s)the reward names \['harmlessness', 'helpfulness'\].*another order",
        ),
        (
            ["helpful", "harmless"],
            r"(?s)model.init_args.reward.init_args.names.*policy.init_args.objective_names",
        ),
    ],
)
def test_reward_names_must_match_the_policy_in_order(reward_names, match):
    reward = MultiObjectiveReward([_zeros, _zeros], names=reward_names)
    with pytest.raises(ValueError, match=match):
        reward.match_objectives(
            ["helpfulness", "harmlessness"], key="model.init_args.policy.init_args.objective_names"
        )


def test_reward_without_names_adopts_the_policy_names():
    reward = MultiObjectiveReward([_zeros, _zeros])
    assert reward.names == ["objective_0", "objective_1"]
    reward.match_objectives(["helpfulness", "harmlessness"], key="k")
    assert reward.names == ["helpfulness", "harmlessness"]


def test_module_refuses_swapped_reward_names():
    from pareto_lightning import GRPOModule, SmoothTchebycheff
    from pareto_lightning.tasks import LexiconReward, LexiconTask

    policy = LexiconTask().policy(max_new_tokens=4)
    reward = MultiObjectiveReward([LexiconReward(1), LexiconReward(0)], names=["harmlessness", "helpfulness"])
    with pytest.raises(ValueError, match=r"in the same order"):
        GRPOModule(policy, reward, SmoothTchebycheff(), num_generations=2)


def test_functions_declaring_other_objectives_than_their_slots_are_refused():
    from pareto_lightning.tasks import LexiconReward

    swapped = [LexiconReward("harmlessness"), LexiconReward("helpfulness")]
    with pytest.raises(ValueError, match=r"(?s)same objectives in another order.*functions\[0\]` \(LexiconReward\) "
                                         r"scores 'harmlessness' but its slot is objective 0, 'helpfulness'"):
        MultiObjectiveReward(swapped, names=["helpfulness", "harmlessness"])
    unnamed = MultiObjectiveReward(swapped)  # checked when the policy's names arrive
    NAMES_KEY = "model.init_args.policy.init_args.objective_names"
    with pytest.raises(ValueError, match=r"functions\[1\]` \(LexiconReward\) scores 'helpfulness'.*"
                                         r"`model.init_args.policy.init_args.objective_names`"):
        unnamed.match_objectives(["helpfulness", "harmlessness"], key=NAMES_KEY)


def test_declared_objectives_in_their_slots_and_undeclared_functions_pass():
    from pareto_lightning.rewards import DeclaresObjective, declared_objective
    from pareto_lightning.tasks import LexiconReward

    reward = MultiObjectiveReward([LexiconReward(0), num_words], names=["helpfulness", "length"])
    reward.match_objectives(["helpfulness", "length"], key="k")
    assert isinstance(LexiconReward(1), DeclaresObjective) and not isinstance(num_words, DeclaresObjective)
    assert [declared_objective(f) for f in (LexiconReward(2), num_words)] == ["honesty", None]


def test_the_issue_command_with_swapped_rewards_is_refused(tmp_path, capsys):
    import os

    from pareto_lightning.cli import main

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    functions = ('[{"class_path":"pareto_lightning.tasks.LexiconReward","init_args":{"objective":"harmlessness"}},'
                 '{"class_path":"pareto_lightning.tasks.LexiconReward","init_args":{"objective":"helpfulness"}}]')
    with pytest.raises(SystemExit):
        main(["validate", "--config", os.path.join(root, "recipes", "weighted_grpo.yaml"),
              "--model.init_args.policy.init_args.model.init_args.steps=1", f"--trainer.default_root_dir={tmp_path}",
              f"--model.init_args.reward.init_args.functions={functions}"])  # fmt: skip
    err = capsys.readouterr().err
    assert "`model.init_args.reward.init_args.functions[0]` (LexiconReward) scores 'harmlessness'" in err
