import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402
from tokenizers import Tokenizer, models, pre_tokenizers  # noqa: E402
from transformers import GPT2Config, GPT2ForSequenceClassification, PreTrainedTokenizerFast  # noqa: E402

from pareto_lightning.rewards import HH_TEMPLATE, HFRewardModel, RewardFunction  # noqa: E402

WORDS = "Human Assistant : the a cat dog sat on mat is good bad yes no please".split()
VOCAB = {w: i for i, w in enumerate(["[UNK]", "[PAD]", "<eos>", *WORDS])}
EOS = VOCAB["<eos>"]
PROMPTS = ["the cat sat", "is the dog good", "a mat", "yes", "no no no please"]
COMPLETIONS = ["on the mat", "yes", "the dog sat on a mat is bad", "unknownword here", "good"]


def _backend() -> Tokenizer:
    tok = Tokenizer(models.WordLevel(vocab=VOCAB, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return tok


def _tokenizer(with_pad: bool = True) -> PreTrainedTokenizerFast:
    extra = {"pad_token": "[PAD]"} if with_pad else {}
    return PreTrainedTokenizerFast(tokenizer_object=_backend(), unk_token="[UNK]", eos_token="<eos>", **extra)


def _model(seed: int = 0, dropout: float = 0.0) -> GPT2ForSequenceClassification:
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=len(VOCAB),
        n_positions=64,
        n_layer=1,
        n_embd=16,
        n_head=2,
        num_labels=1,
        bos_token_id=EOS,
        eos_token_id=EOS,
        resid_pdrop=dropout,
        embd_pdrop=dropout,
        attn_pdrop=dropout,
    )
    return GPT2ForSequenceClassification(config).eval()


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A tiny reward model and its tokenizer (no pad token, like GPT-2) saved to a folder."""
    path = tmp_path_factory.mktemp("rm")
    model = _model(dropout=0.3)
    model.save_pretrained(path)
    _tokenizer(with_pad=False).save_pretrained(path)
    return path, model


def _manual_scores(model, texts, max_length=None):
    # one text at a time, tokenized by the `tokenizers` backend directly: no padding, no batching
    backend = _backend()
    scores = []
    with torch.no_grad():
        for text in texts:
            ids = backend.encode(text).ids[:max_length]
            scores.append(model(torch.tensor([ids])).logits[0, 0])
    return torch.stack(scores)


def test_scores_equal_a_manual_forward_on_the_templated_text(saved):
    path, model = saved
    rm = HFRewardModel(str(path))
    scores = rm(PROMPTS, COMPLETIONS)
    texts = [
        HH_TEMPLATE.format(prompt=p, completion=c) for p, c in zip(PROMPTS, COMPLETIONS, strict=True)
    ]
    assert texts[0] == "\n\nHuman: the cat sat \n\nAssistant: on the mat"
    assert scores.shape == (5,) and scores.dtype == torch.float32
    torch.testing.assert_close(scores, _manual_scores(model, texts), rtol=1e-5, atol=1e-6)
    assert isinstance(rm, RewardFunction)


def test_batch_size_does_not_change_scores(saved):
    path, _ = saved
    reference = HFRewardModel(str(path), batch_size=16)(PROMPTS, COMPLETIONS)
    for batch_size in (1, 2, 3):
        scores = HFRewardModel(str(path), batch_size=batch_size)(PROMPTS, COMPLETIONS)
        torch.testing.assert_close(scores, reference, rtol=1e-5, atol=1e-6)


def test_scores_in_its_own_dtype_under_a_mixed_precision_step(saved):
    # Lightning's "bf16-mixed" runs training_step under autocast; a float32 reward model must not be recast.
    path, _ = saved
    rm = HFRewardModel(str(path))
    reference = rm(PROMPTS, COMPLETIONS)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under_autocast = rm(PROMPTS, COMPLETIONS)
        recast = rm.model(**rm.tokenizer(rm.format(PROMPTS, COMPLETIONS), padding=True, return_tensors="pt"))
    assert recast.logits.dtype == torch.bfloat16  # what scoring would do without the guard
    torch.testing.assert_close(under_autocast, reference, rtol=0, atol=0)


def test_frozen_eval_mode_and_untouched_parameters(saved):
    path, _ = saved
    rm = HFRewardModel(str(path))
    assert not any(p.requires_grad for p in rm.parameters())
    before = {k: v.clone() for k, v in rm.state_dict().items()}
    rm.train()  # the trainer asks for training mode: dropout (p=0.3 here) must stay off
    assert not rm.training and not rm.model.training
    first, second = rm(PROMPTS, COMPLETIONS), rm(PROMPTS, COMPLETIONS)
    assert torch.equal(first, second)
    for key, value in rm.state_dict().items():
        assert torch.equal(value, before[key]), key
    # an ordinary tensor (not an inference tensor): usable in maths that autograd records
    weight = torch.ones(5, requires_grad=True)
    (first * weight).sum().backward()
    torch.testing.assert_close(weight.grad, first)


def test_pad_token_from_eos_when_missing(saved):
    path, _ = saved
    rm = HFRewardModel(str(path))
    assert rm.tokenizer.pad_token == "<eos>"
    assert rm.model.config.pad_token_id == EOS


def test_given_tokenizer_is_used_and_not_modified():
    tok = _tokenizer(with_pad=False)
    model = _model()
    rm = HFRewardModel(model, tokenizer=tok)
    assert tok.pad_token is None and rm.tokenizer.pad_token == "<eos>"
    with_pad = HFRewardModel(_model(), tokenizer=_tokenizer(with_pad=True))
    assert with_pad.tokenizer.pad_token == "[PAD]" and with_pad.model.config.pad_token_id == VOCAB["[PAD]"]
    texts = [
        HH_TEMPLATE.format(prompt=p, completion=c) for p, c in zip(PROMPTS, COMPLETIONS, strict=True)
    ]
    torch.testing.assert_close(rm(PROMPTS, COMPLETIONS), _manual_scores(model, texts), rtol=1e-5, atol=1e-6)


def test_tokenizer_from_a_separate_path(saved, tmp_path):
    path, _ = saved
    _tokenizer(with_pad=True).save_pretrained(tmp_path)
    rm = HFRewardModel(str(path), tokenizer=str(tmp_path))
    assert rm.tokenizer.pad_token == "[PAD]"


def test_right_truncation_to_max_length(saved):
    path, model = saved
    rm = HFRewardModel(str(path), max_length=6, template="{prompt} {completion}")
    texts = [f"{p} {c}" for p, c in zip(PROMPTS, COMPLETIONS, strict=True)]
    assert len(_backend().encode(texts[2]).ids) > 6  # this one is cut
    torch.testing.assert_close(
        rm(PROMPTS, COMPLETIONS), _manual_scores(model, texts, 6), rtol=1e-5, atol=1e-6
    )


def test_dtype_argument(saved):
    path, _ = saved
    for dtype in ("float64", torch.float64, "torch.float64"):
        rm = HFRewardModel(str(path), dtype=dtype)
        assert next(rm.parameters()).dtype == torch.float64
        assert rm(PROMPTS[:2], COMPLETIONS[:2]).dtype == torch.float32
    rm = HFRewardModel(_model(), tokenizer=_tokenizer(), dtype="bfloat16")
    assert next(rm.parameters()).dtype == torch.bfloat16 and rm(["a"], ["b"]).dtype == torch.float32


def test_max_length_is_capped_at_the_position_limit(saved):
    path, _ = saved
    assert HFRewardModel(str(path)).max_length == 64  # n_positions of the tiny model
    assert HFRewardModel(str(path), max_length=10).max_length == 10


def test_empty_input_and_device(saved):
    path, _ = saved
    rm = HFRewardModel(str(path))
    assert rm([], []).shape == (0,)
    assert rm.device == torch.device("cpu")


# ---------------------------------------------------------------------------------------------------- errors
def test_unloadable_model_gives_one_clear_error(tmp_path):
    message = (
        r"could not load reward model '.*{}' \(model.init_args.reward.init_args.functions\[i\].init_args."
        r"name_or_path\): "
        r"the Hugging Face Hub must be reachable, or give a local path"
    )
    missing = str(tmp_path / "does" / "not" / "exist")
    with pytest.raises(FileNotFoundError, match=r"the reward model folder '.*exist' does not exist"):
        HFRewardModel(missing)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(OSError, match=message.format("empty")) as info:
        HFRewardModel(str(empty))
    assert info.value.__cause__ is not None


def test_unloadable_tokenizer_gives_the_same_error(saved, tmp_path):
    path, _ = saved
    with pytest.raises(
        OSError, match=r"functions\[i\].init_args.tokenizer`: the tokenizer folder '.*nowhere' does not"
    ):
        HFRewardModel(str(path), tokenizer=str(tmp_path / "no" / "where" / "nowhere"))


def test_bad_arguments(saved):
    path, _ = saved
    key = r"model.init_args.reward.init_args.functions\[i\].init_args"
    with pytest.raises(ValueError, match=rf"`max_length` must be >= 1 \({key}.max_length\); got 0"):
        HFRewardModel(str(path), max_length=0)
    with pytest.raises(ValueError, match=rf"`batch_size` must be >= 1 \({key}.batch_size\); got 0"):
        HFRewardModel(str(path), batch_size=0)
    with pytest.raises(
        ValueError,
        match=r"`model.init_args.reward.init_args.functions\[i\].init_args.dtype` must be a floating torch .*'int8'",
    ):
        HFRewardModel(str(path), dtype="int8")
    with pytest.raises(ValueError, match=r"init_args.dtype` must be .*got 'half_precision'"):
        HFRewardModel(str(path), dtype="half_precision")
    with pytest.raises(
        ValueError, match=r"exactly the fields \{prompt\} and \{completion\}.*got fields \['prompt'\]"
    ):
        HFRewardModel(str(path), template="{prompt} only")
    with pytest.raises(ValueError, match=r"got fields \['completion', 'prompt', 'system'\]"):
        HFRewardModel(str(path), template="{system} {prompt} {completion}")


def test_tokenizer_without_pad_or_eos():
    bare = PreTrainedTokenizerFast(tokenizer_object=_backend(), unk_token="[UNK]")
    with pytest.raises(
        ValueError, match=r"has neither a pad nor an eos token; pass a tokenizer with a pad token"
    ):
        HFRewardModel(_model(), tokenizer=bare)


def test_model_object_without_a_name_needs_a_tokenizer():
    with pytest.raises(
        ValueError, match=r"`tokenizer` is required when the reward model is passed as an object"
    ):
        HFRewardModel(_model())


def test_mismatched_prompts_and_completions():
    rm = HFRewardModel(_model(), tokenizer=_tokenizer())
    with pytest.raises(ValueError, match="got 2 prompts but 1 completions"):
        rm(["a", "b"], ["c"])


def test_yaml_config_builds_a_reward_model(saved):
    jsonargparse = pytest.importorskip("jsonargparse")
    from pareto_lightning.rewards import MultiObjectiveReward

    path, _ = saved
    parser = jsonargparse.ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(MultiObjectiveReward, "reward")
    config = (
        "reward:\n"
        "  functions:\n"
        "    - class_path: pareto_lightning.rewards.HFRewardModel\n"
        f"      init_args: {{name_or_path: {path}, batch_size: 2, dtype: float32}}\n"
        "  normalizer: pareto_lightning.rewards.MaxNormalizer\n"
    )
    reward = parser.instantiate(parser.parse_string(config)).reward
    assert isinstance(reward.reward_modules[0], HFRewardModel) and reward.reward_modules[0].batch_size == 2
    raw, normalized = reward(PROMPTS, COMPLETIONS)
    assert raw.shape == normalized.shape == (5, 1)


def test_missing_local_reward_model_folder_is_named():
    with pytest.raises(
        FileNotFoundError, match=r"name_or_path`: the reward model folder '/no/such/rm' does not"
    ):
        HFRewardModel("/no/such/rm")


def test_a_configured_objective_is_declared_and_checked_against_its_slot(saved):
    from pareto_lightning.rewards import MultiObjectiveReward, declared_objective

    path, _ = saved
    helpful = HFRewardModel(str(path), objective="helpfulness")
    assert declared_objective(helpful) == "helpfulness" and declared_objective(HFRewardModel(str(path))) is None
    with pytest.raises(ValueError, match=r"scores 'helpfulness' but its slot is objective 1, 'harmlessness'"):
        MultiObjectiveReward([HFRewardModel(str(path)), helpful], names=["helpfulness", "harmlessness"])
