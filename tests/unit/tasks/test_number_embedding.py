"""NumberEmbedding: where numbers are found and their values (hand-worked), the embedding it gives, and a
LexiconLM that reads numbers as values (save and load, refused by a generic loader)."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM

from pareto_lightning import PreferencePolicy
from pareto_lightning.loading import load_pretrained
from pareto_lightning.tasks import LexiconLM, LexiconTokenizer
from pareto_lightning.tasks.number_embedding import NumberEmbedding, number_values
from pareto_lightning.tasks.vocabulary import DIGITS, VOCABULARY

DIGIT_IDS = [VOCABULARY.index(d) for d in DIGITS]
POINT = VOCABULARY.index(".")


def _parse(text: str) -> list[tuple[str, float]]:
    tok = LexiconTokenizer()
    ids = tok(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
    mask, values = number_values(ids, DIGIT_IDS, POINT)
    tokens = tok.convert_ids_to_tokens(ids[0].tolist())
    return [(t, round(v, 6)) for t, m, v in zip(tokens, mask[0].tolist(), values[0].tolist(), strict=True) if m]


def test_the_preference_line_gives_each_weight_on_its_own_tokens():
    got = _parse("Preference weights: helpfulness=0.95, harmlessness=0.05.\n")
    assert got == [("0", 0.95), (".", 0.95), ("9", 0.95), ("5", 0.95),
                   ("0", 0.05), (".", 0.05), ("0", 0.05), ("5", 0.05)]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("helpfulness=1.00.", [1.0] * 4),  # the full stop after the last digit is not part of the number
        ("safe 7 kind", [7.0]),  # an integer
        ("1.2.3", [1.2] * 3 + [3.0]),  # one decimal point per number: "1.2", then "." alone, then "3"
        ("12 . 5", [12.5] * 4),  # the tokens carry no spaces: "12 . 5" reaches the model as 12.5
        ("safe and kind .", []),
    ],
)
def test_number_values_by_hand(text, expected):
    assert [v for _, v in _parse(text)] == pytest.approx(expected)


def test_number_values_of_a_batch_and_its_padding():
    ids = torch.tensor(
        [[0, 0, DIGIT_IDS[0], POINT, DIGIT_IDS[3]], [DIGIT_IDS[1], POINT, DIGIT_IDS[0], DIGIT_IDS[0], 0]]
    )
    mask, values = number_values(ids, DIGIT_IDS, POINT)
    assert mask.tolist() == [[False, False, True, True, True], [True, True, True, True, False]]
    torch.testing.assert_close(values, torch.tensor([[0, 0, 0.3, 0.3, 0.3], [1.0, 1.0, 1.0, 1.0, 0]]))


def test_number_embedding_is_affine_in_the_value_and_plain_elsewhere():
    emb = NumberEmbedding(len(VOCABULARY), 8, DIGIT_IDS, POINT)
    emb.reset_number_parameters(1.0)
    tok = LexiconTokenizer()
    rows = [f"safe helpfulness={w}" for w in ("0.90", "0.95", "1.00")]
    ids = tok(rows, return_tensors="pt", add_special_tokens=False)["input_ids"]  # same length: 2 words, "=", 4 digits
    out = emb(ids)  # [3, L, 8]
    torch.testing.assert_close(out[1, -1], (out[0, -1] + out[2, -1]) / 2)  # 0.95 halfway between 0.90 and 1.00
    torch.testing.assert_close(out[2, -4], emb.number + emb.scale)
    torch.testing.assert_close(out[:, 0], emb.weight[ids[:, 0]])  # "safe" is embedded as usual
    out[:, -1].sum().backward()
    assert emb.number.grad is not None and emb.scale.grad.abs().sum() > 0


def test_number_embedding_refuses_a_wrong_digit_list():
    with pytest.raises(ValueError, match="digit_ids"):
        NumberEmbedding(12, 4, digit_ids=range(9), point_id=10)


def test_a_numeric_lexicon_lm_saves_reloads_and_is_refused_by_a_generic_loader(tmp_path):
    model = LexiconLM(seed=3, number_embedding=True)
    assert isinstance(model.get_input_embeddings(), NumberEmbedding)
    assert model.lm_head.weight is model.get_input_embeddings().weight
    other = LexiconLM(seed=4, number_embedding=True)
    assert not torch.equal(other.model.embed_tokens.scale, model.model.embed_tokens.scale)  # the seed decides
    model.save_pretrained(tmp_path)
    again = LexiconLM.from_pretrained(tmp_path)
    ids = torch.tensor([[5, 6, DIGIT_IDS[0], POINT, DIGIT_IDS[7], DIGIT_IDS[5]]])
    torch.testing.assert_close(again(input_ids=ids).logits, model(input_ids=ids).logits)
    key = "model.init_args.policy.init_args.model"
    with pytest.raises(ValueError, match=r"`model\.init_args\.policy\.init_args\.model`: .*number_embedding: true"):
        load_pretrained(AutoModelForCausalLM, str(tmp_path), key, "policy model")


def test_a_policy_over_a_numeric_model_samples_under_unseen_weights():
    policy = PreferencePolicy(LexiconLM(seed=0, number_embedding=True), LexiconTokenizer(), max_new_tokens=4)
    rollout = policy.generate(["write a note about the river"] * 2, torch.tensor([[0.95, 0.05], [0.37, 0.63]]), 3)
    assert rollout.completion_ids.shape[0] == 6 and torch.isfinite(policy.log_probs(rollout)).all()


def test_number_values_match_a_regular_expression_on_random_token_strings():
    import re

    g = torch.Generator().manual_seed(0)
    pool = torch.tensor([*DIGIT_IDS, POINT, POINT, VOCABULARY.index("safe"), VOCABULARY.index("=")])
    ids = pool[torch.randint(0, len(pool), (200, 12), generator=g)]  # [200, 12]
    mask, values = number_values(ids, DIGIT_IDS, POINT)
    char = {t: d for t, d in zip(DIGIT_IDS, DIGITS, strict=True)} | {POINT: "."}
    for b, row in enumerate(ids.tolist()):
        text = "".join(char.get(t, "x") for t in row)  # one character per token
        want_mask, want_values = [False] * len(row), [0.0] * len(row)
        for match in re.finditer(r"\d+(\.\d+)?", text):
            for j in range(match.start(), match.end()):
                want_mask[j], want_values[j] = True, float(match.group())
        assert mask[b].tolist() == want_mask, text
        assert values[b].tolist() == pytest.approx(want_values), text
