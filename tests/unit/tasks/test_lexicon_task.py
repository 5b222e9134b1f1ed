"""The lexicon task's tokenizer, model, rewards and prompts."""

import os

import pytest
import torch
import transformers

from pareto_lightning.tasks import (
    FILLER_WORDS,
    LEXICONS,
    OBJECTIVE_NAMES,
    VOCABULARY,
    LexiconLM,
    LexiconPrompts,
    LexiconReward,
    LexiconTask,
    LexiconTokenizer,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")

CONDITIONING = "Preference weights: helpfulness=0.70, harmlessness=0.30."


@pytest.fixture(scope="module")
def tok():
    return LexiconTokenizer()


# ------------------------------------------------------------------------------------------------- vocabulary
def test_vocabulary_is_unique_and_lexicons_are_disjoint():
    assert len(VOCABULARY) == len(set(VOCABULARY)) == 91
    words = [set(LEXICONS[n]) for n in OBJECTIVE_NAMES]
    assert all(len(w) == 8 for w in words)
    others = set(VOCABULARY) - set().union(*words)
    assert not (words[0] & words[1] or words[0] & words[2] or words[1] & words[2])
    assert set(FILLER_WORDS) <= others and all(w in VOCABULARY for w in words[2])


# -------------------------------------------------------------------------------------------------- tokenizer
def test_conditioning_line_tokenizes_without_unknowns_and_digit_by_digit(tok):
    ids = tok(CONDITIONING + "\nwrite a short note about the river\n")["input_ids"]
    tokens = tok.convert_ids_to_tokens(ids)
    assert tok.unk_token_id not in ids
    assert tokens[:10] == ["Preference", "weights", ":", "helpfulness", "=", "0", ".", "7", "0", ","]
    assert tokens[-7:] == [
        "write",
        "a",
        "short",
        "note",
        "about",
        "the",
        "river",
    ]  # the newline is whitespace
    assert tok.decode(ids).startswith("Preference weights : helpfulness = 0 . 7 0 , harmlessness = 0 . 3 0 .")


def test_unknown_word_and_special_tokens(tok):
    assert tok("zebra")["input_ids"] == [tok.unk_token_id]
    assert (tok.pad_token, tok.unk_token, tok.eos_token) == ("<pad>", "<unk>", "<eos>")
    assert tok.chat_template is None and tok.padding_side == "left"
    assert (
        tok.decode([tok.eos_token_id, tok.convert_tokens_to_ids("kind")], skip_special_tokens=True) == "kind"
    )


@pytest.mark.parametrize("word", [w for n in OBJECTIVE_NAMES for w in LEXICONS[n]])
def test_every_lexicon_word_round_trips(tok, word):
    ids = tok(word)["input_ids"]
    assert len(ids) == 1 and tok.decode(ids) == word


def test_left_padding(tok):
    batch = tok(["safe", "safe and kind"], padding=True, return_tensors="pt")
    assert batch["input_ids"][0].tolist()[:2] == [tok.pad_token_id] * 2
    assert batch["attention_mask"].tolist() == [[0, 0, 1], [1, 1, 1]]


def test_tokenizer_save_and_auto_load(tok, tmp_path):
    tok.save_pretrained(tmp_path)
    loaded = transformers.AutoTokenizer.from_pretrained(tmp_path)
    assert not isinstance(loaded, LexiconTokenizer)  # reloads without this package
    text = CONDITIONING + "\nexplain a brief answer about the ocean\n"
    assert loaded(text)["input_ids"] == tok(text)["input_ids"]
    assert (loaded.pad_token_id, loaded.eos_token_id, loaded.padding_side) == (0, 2, "left")
    again = LexiconTokenizer.from_pretrained(tmp_path)
    assert again(text)["input_ids"] == tok(text)["input_ids"]


# ------------------------------------------------------------------------------------------------------ model
def test_model_size_and_config():
    model = LexiconLM()
    assert sum(p.numel() for p in model.parameters()) == 80128
    assert model.config.vocab_size == len(VOCABULARY)
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight
    assert (model.config.pad_token_id, model.config.eos_token_id) == (0, 2)
    assert model.generation_config.eos_token_id == 2


def test_model_is_deterministic_per_seed_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a, b, c = LexiconLM(seed=0), LexiconLM(seed=0), LexiconLM(seed=1)
    assert torch.equal(torch.rand(3), expected)
    pa, pb, pc = (torch.nn.utils.parameters_to_vector(m.parameters()) for m in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)


def test_model_save_and_auto_load_gives_identical_logits(tmp_path):
    model = LexiconLM(num_layers=1, seed=3).eval()
    model.save_pretrained(tmp_path)
    loaded = transformers.AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert type(loaded) is transformers.Qwen2ForCausalLM
    assert transformers.AutoConfig.from_pretrained(tmp_path).architectures == ["Qwen2ForCausalLM"]
    x = torch.randint(3, len(VOCABULARY), (2, 9))
    with torch.no_grad():
        assert torch.equal(model(x).logits, loaded(x).logits)


def test_generate_left_padded_batch_and_reward_the_text(tok):
    model = LexiconLM().eval()
    prompts = [CONDITIONING + "\nwrite a note about the river\n", "review a quick story about the city"]
    batch = tok(prompts, padding=True, return_tensors="pt")
    assert batch["attention_mask"][1, 0] == 0  # the shorter prompt is padded on the left
    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=5, do_sample=False, pad_token_id=tok.pad_token_id)
    assert out.shape[0] == 2 and 1 <= out.shape[1] - batch["input_ids"].shape[1] <= 5
    texts = tok.batch_decode(out[:, batch["input_ids"].shape[1] :], skip_special_tokens=True)
    rewards = LexiconReward("helpfulness")(prompts, texts)
    assert rewards.shape == (2,) and ((rewards >= 0) & (rewards <= 1)).all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"hidden_size": 0}, "`hidden_size` must be an integer >= 1; got 0"),
        ({"num_layers": 1.5}, "`num_layers` must be an integer >= 1"),
        ({"hidden_size": 30, "num_heads": 4}, "must be a multiple of `num_heads`"),
        ({"hidden_size": 36, "num_heads": 4}, "must be even"),
        ({"num_heads": 4, "num_kv_heads": 3}, "must be a multiple of `num_kv_heads`"),
    ],
)
def test_model_size_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LexiconLM(**kwargs)


# ---------------------------------------------------------------------------------------------------- rewards
def test_reward_hand_values():
    helpful = LexiconReward("helpfulness")
    text = "helpful useful clear practical " + "and " * 12  # 4 of 16 words
    assert helpful(["p"], [text]).tolist() == pytest.approx([0.125])  # (4/16) ** 1.5
    assert LexiconReward(1)(["p"], [text]).item() == 0.0
    # Punctuation, digits and unknown words count zero; the whole decoded text is scored.
    assert helpful(["p"], ["helpful . 7 helpfulness zebra"]).item() == pytest.approx((1 / 16) ** 1.5)
    assert LexiconReward("honesty", completion_words=4, kappa=2.0)(["p"], ["honest candid so"]).item() == 0.25
    # Only the first completion_words words are read: nothing reaches beyond the exact front.
    assert LexiconReward(0, completion_words=2)(["p"], ["clear " * 5]).item() == 1.0
    assert LexiconReward(0, completion_words=2)(["p"], ["and clear clear"]).item() == pytest.approx(0.5**1.5)
    long = " ".join(["helpful"] * 9 + ["safe"] * 8)  # 17 words: 9 + 7 are read
    r = torch.tensor(
        [[f(["p"], [long]).item() for f in LexiconTask().reward_functions()]], dtype=torch.float64
    )
    assert (LexiconTask().exact_front() - r).abs().amax(-1).min().item() < 1e-6
    out = helpful(["a", "b"], ["", "thorough"])
    assert out.dtype == torch.float32 and out.shape == (2,)


def test_reward_matches_the_task_front():
    # 10 harmless and 6 honest words: the K=3 front point (0, (10/16)^1.5, (6/16)^1.5).
    text = " ".join(["safe"] * 10 + ["factual"] * 6)
    task = LexiconTask(num_objectives=3)
    r = torch.stack([f(["p"], [text]) for f in task.reward_functions()], dim=-1).double()  # [1, 3]
    assert (task.exact_front() - r).abs().amax(-1).min().item() < 1e-6


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"objective": "kindness"}, "`objective` must be one of 'helpfulness', 'harmlessness', 'honesty'"),
        ({"objective": 3}, r"or an index 0\.\.2; got 3"),
        ({"objective": True}, "`objective` must be one of"),
        ({"objective": 0, "completion_words": 0}, "`completion_words` must be an integer >= 1"),
        ({"objective": 0, "kappa": -1.0}, "`kappa` must be a number > 0"),
    ],
)
def test_reward_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LexiconReward(**kwargs)


def test_reward_length_mismatch():
    with pytest.raises(ValueError, match="got 2 prompts but 1 completions"):
        LexiconReward(0)(["a", "b"], ["safe"])


# ---------------------------------------------------------------------------------------------------- prompts
def test_prompts_are_deterministic_in_vocabulary_and_distinct(tok):
    a, b, c = LexiconPrompts(64, seed=0), LexiconPrompts(64, seed=0), LexiconPrompts(64, seed=1)
    assert a() == b.load() == b.prompts and a() != c()
    assert len(a) == 64 and len(set(a())) == 64
    ids = tok(a())["input_ids"]
    assert all(tok.unk_token_id not in row and len(row) == 7 for row in ids)
    assert len(LexiconPrompts(2304)) == 2304


@pytest.mark.parametrize("n", [0, 2305, 1.5])
def test_prompts_errors(n):
    with pytest.raises(ValueError, match=r"`num_prompts` must be an integer in \[1, 2304\]"):
        LexiconPrompts(num_prompts=n)


# ------------------------------------------------------------------------------------------------------- task
def test_task_builds_its_parts():
    task = LexiconTask()
    assert isinstance(task.tokenizer(), LexiconTokenizer)
    model = task.model(hidden_size=32, seed=2)
    assert isinstance(model, LexiconLM) and model.config.hidden_size == 32
    assert [f.name for f in task.reward_functions()] == ["helpfulness", "harmlessness"]


def test_policy_conditioning_text_has_no_unknown_tokens_for_three_objectives(tok):
    from pareto_lightning.conditioning import conditioned_prompt

    names = LexiconTask(num_objectives=3).objective_names
    text = conditioned_prompt("discuss a simple letter about the bridge", [0.33, 0.33, 0.34], names, tok)
    ids = tok(text)["input_ids"]
    assert tok.unk_token_id not in ids
    assert tok.convert_ids_to_tokens(ids).count("3") == 5  # 0.33, 0.33, 0.34 digit by digit
