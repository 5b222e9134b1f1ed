"""LLMJudge on a tiny Llama: the score is the Yes/No log-odds of the next token, batched or not, frozen."""

import re

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from pareto_lightning.rewards import DEFAULT_JUDGE_TEMPLATE, LLMJudge, MultiObjectiveReward

KEY = "model.init_args.reward.init_args.functions[i].init_args"
WORDS = (
    "Request Response Answer Yes No yes no or : . ? is this helpful the sky blue because light it a".split()
)
VOCAB = {w: i for i, w in enumerate(["<unk>", "<pad>", "<eos>", "<|im_start|>", "<|im_end|>", *WORDS])}
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
PROMPTS = ["is the sky blue ?", "the sky", "is this helpful ?"]
COMPLETIONS = ["yes it is blue because light", "blue", "no"]


def _tokenizer(chat: bool = False) -> PreTrainedTokenizerFast:
    backend = Tokenizer(models.WordLevel(VOCAB, "<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    extra = {"chat_template": CHATML} if chat else {}
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", pad_token="<pad>",
                                   eos_token="<eos>", additional_special_tokens=["<|im_start|>", "<|im_end|>"],
                                   **extra)  # fmt: skip


def _model(seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(VOCAB), hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=128,
                         pad_token_id=VOCAB["<pad>"], eos_token_id=VOCAB["<eos>"])  # fmt: skip
    return LlamaForCausalLM(config).eval()


def _judge(**kwargs) -> LLMJudge:
    kwargs.setdefault("yes", ["Yes", "yes"])
    kwargs.setdefault("no", ["No", "no"])
    return LLMJudge(_model(), tokenizer=_tokenizer(), **kwargs)


def _manual_log_odds(judge: LLMJudge, text: str) -> float:
    """One text, no padding, the token ids looked up by hand."""
    ids = torch.tensor([[VOCAB.get(w, 0) for w in text.split()]])
    with torch.no_grad():
        logits = judge.model(input_ids=ids).logits[0, -1]  # [V]
    yes = torch.logsumexp(logits[[VOCAB["Yes"], VOCAB["yes"]]], 0)
    no = torch.logsumexp(logits[[VOCAB["No"], VOCAB["no"]]], 0)
    return float(yes - no)


def test_log_odds_are_the_yes_minus_no_log_probabilities():
    judge = _judge(output="log_odds")
    texts = judge.format(PROMPTS, COMPLETIONS)
    assert (
        texts[1]
        == "Request: the sky\n\nResponse: blue\n\nIs this response helpful? Answer Yes or No.\nAnswer:"
    )
    scores = judge(PROMPTS, COMPLETIONS)
    assert scores.shape == (3,) and scores.dtype == torch.float32
    expected = [_manual_log_odds(judge, t) for t in texts]
    assert scores.tolist() == pytest.approx(expected, abs=1e-5)


def test_probability_is_the_logistic_of_the_log_odds():
    log_odds = _judge(output="log_odds")(PROMPTS, COMPLETIONS)
    probability = _judge()(PROMPTS, COMPLETIONS)
    assert torch.allclose(probability, torch.sigmoid(log_odds), atol=1e-6)
    assert bool(((probability > 0) & (probability < 1)).all())


def test_batching_and_left_padding_do_not_change_the_scores():
    one_by_one = _judge(batch_size=1)(PROMPTS, COMPLETIONS)
    batched = _judge(batch_size=3)(PROMPTS, COMPLETIONS)
    assert torch.allclose(one_by_one, batched, atol=1e-5)


def test_the_question_changes_what_is_asked():
    judge = _judge(question="Is it blue?")
    assert "Is it blue? Answer Yes or No." in judge.format(["q"], ["a"])[0]


def test_a_chat_template_wraps_the_text_as_a_user_turn():
    judge = LLMJudge(_model(), tokenizer=_tokenizer(chat=True), yes=["Yes"], no=["No"])
    text = judge.format(["the sky"], ["blue"])[0]
    assert text.startswith("<|im_start|>user\nRequest: the sky") and text.endswith("<|im_start|>assistant\n")
    assert judge(["the sky"], ["blue"]).shape == (1,)
    assert not LLMJudge(_model(), tokenizer=_tokenizer(chat=True), chat=False).chat


def test_the_judge_is_frozen_and_stays_in_eval_mode():
    judge = _judge()
    assert not any(p.requires_grad for p in judge.parameters())
    assert judge.train().training is False and judge.model.training is False
    reward = MultiObjectiveReward([judge, _judge(question="Is it blue?")], names=["helpful", "blue"])
    reward.train()
    raw, _ = reward(PROMPTS, COMPLETIONS)
    assert raw.shape == (3, 2) and not raw.requires_grad


def test_the_caller_tokenizer_is_not_changed():
    tok = _tokenizer()
    LLMJudge(_model(), tokenizer=tok, yes=["Yes"], no=["No"])
    assert tok.padding_side == "right"


@pytest.mark.parametrize(
    ("kwargs", "key", "message"),
    [
        ({"question": " "}, "question", "must be a non-empty question"),
        ({"template": "{prompt} {completion}"}, "template", "must contain exactly the fields"),
        ({"yes": []}, "yes", "must each list at least one spelling"),
        ({"output": "logits"}, "output", "must be 'probability' or 'log_odds'"),
        ({"batch_size": 0}, "batch_size", "must be >= 1"),
        ({"max_length": 2}, "max_length", "must be >= 8"),
        ({"yes": ["Yes please"]}, "yes", "'Yes please' is 2 tokens"),
        ({"yes": ["Yes"], "no": ["No", "Yes"]}, "no", "shares a token with `yes`"),
    ],
)
def test_bad_settings_name_their_key(kwargs, key, message):
    with pytest.raises(ValueError, match=re.escape(f"`{KEY}.{key}`") + ".*" + re.escape(message)):
        _judge(**kwargs)


def test_a_model_object_needs_a_tokenizer():
    model = _model()
    model.name_or_path = ""
    with pytest.raises(ValueError, match=re.escape(f"`{KEY}.tokenizer` is required")):
        LLMJudge(model)


def test_the_judge_loads_from_a_folder(tmp_path):
    _model().save_pretrained(tmp_path)
    _tokenizer().save_pretrained(tmp_path)
    judge = LLMJudge(str(tmp_path), yes=["Yes"], no=["No"], dtype="float32")
    assert judge.name_or_path == str(tmp_path) and judge(["q"], ["a"]).shape == (1,)
    assert DEFAULT_JUDGE_TEMPLATE.count("{") == 3


def test_prompts_and_completions_must_pair_up():
    with pytest.raises(ValueError, match="LLMJudge got 2 prompts but 1 completions"):
        _judge()(["a", "b"], ["c"])


def test_a_configured_objective_is_declared_and_checked_against_its_slot():
    judge = _judge(objective="helpfulness")
    with pytest.raises(ValueError, match=r"LLMJudge\) scores 'helpfulness' but its slot is objective 0, 'detail'"):
        MultiObjectiveReward([judge, _judge()], names=["detail", "helpfulness"])
