import pytest
import torch
from transformers import AutoModelForCausalLM

from pareto_lightning.conditioning import conditioned_prompt, format_preference
from pareto_lightning.policy import PreferencePolicy
from pareto_lightning.tasks import LexiconLM, LexiconTask, LexiconTokenizer


@pytest.fixture(scope="module")
def policy():
    torch.manual_seed(0)
    return LexiconTask().policy(max_new_tokens=6, temperature=1.0)


def test_format_preference_writes_two_decimals():
    assert format_preference([0.37, 0.63], ["a", "b"]) == "a=0.37, b=0.63"
    assert format_preference(torch.tensor([0.005, 0.995]), ["a", "b"], decimals=3) == "a=0.005, b=0.995"
    with pytest.raises(ValueError, match="objective_names"):
        format_preference([0.5, 0.5], ["a"])


def test_chat_template_puts_the_preference_in_a_system_message():
    tok = LexiconTokenizer()
    tok.chat_template = (
        "{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}"
        "{% if add_generation_prompt %}[assistant]{% endif %}"
    )
    text = conditioned_prompt("hi", [0.7, 0.3], ["helpfulness", "harmlessness"], tok)
    assert text == "[system]Preference weights: helpfulness=0.70, harmlessness=0.30.[user]hi[assistant]"


def test_generate_groups_share_w_and_masks_stop_at_eos(policy):
    prompts = ["write a note about the river", "tell me about the city"]
    w = torch.tensor([[0.37, 0.63], [1.0, 0.0]])  # 0.37 is not on the training grid: any w is accepted
    torch.manual_seed(1)
    r = policy.generate(prompts, w, num_generations=3)
    assert r.completion_ids.shape[0] == 6 and len(r) == 6
    assert torch.equal(r.weights, w.double().repeat_interleave(3, 0))
    assert r.prompts == [prompts[0]] * 3 + [prompts[1]] * 3
    eos = policy.tokenizer.eos_token_id
    for ids, mask in zip(r.completion_ids.tolist(), r.completion_mask.tolist(), strict=True):
        if eos in ids:
            first = ids.index(eos)
            assert mask == [1] * (first + 1) + [0] * (len(ids) - first - 1)
        else:
            assert all(mask)
    texts = policy.conditioned_prompts(prompts, w)
    assert "helpfulness=0.37" in texts[0]
    assert (
        r.prompt_ids[:, 0].tolist().count(policy.tokenizer.pad_token_id) >= 3
    )  # left padding of the short one
    assert r.completions[0] == policy.tokenizer.decode(r.completion_ids[0], skip_special_tokens=True)


def test_log_probs_match_unpadded_single_row_forwards(policy):
    torch.manual_seed(2)
    r = policy.generate(["write a note about the river", "hi"], torch.tensor([[0.5, 0.5], [0.2, 0.8]]), 2)
    batched = policy.log_probs(r)  # [N, T]
    for i in range(len(r)):
        keep = r.prompt_mask[i].bool()
        prompt = r.prompt_ids[i][keep]
        ids = torch.cat([prompt, r.completion_ids[i]])[None]
        logits = policy.model(input_ids=ids).logits[0, len(prompt) - 1 : -1] / policy.temperature
        ref = torch.log_softmax(logits.float(), -1).gather(-1, r.completion_ids[i][:, None])[:, 0]
        m = r.completion_mask[i].bool()
        assert torch.allclose(batched[i][m], ref[m], atol=1e-5)


def _grads_and_layer_calls(policy, rollout):
    policy.train()
    calls = []
    # The first module inside the first decoder layer: the layer's own hooks stay outside the checkpoint, and
    # the recomputation stops early, once it has rebuilt the last tensor the backward pass needs.
    norm = next(m for m in policy.model.modules() if type(m).__name__ == "Qwen2DecoderLayer").input_layernorm
    hook = norm.register_forward_hook(lambda *_: calls.append(1))
    policy.model.zero_grad()
    policy.log_probs(rollout).sum().backward()
    hook.remove()
    return {n: p.grad.clone() for n, p in policy.named_parameters() if p.grad is not None}, len(calls)


def test_activation_checkpointing_recomputes_layers_and_keeps_the_gradients():
    plain = PreferencePolicy(LexiconLM(seed=3), LexiconTokenizer(), max_new_tokens=5)
    ckpt = PreferencePolicy(
        LexiconLM(seed=3), LexiconTokenizer(), max_new_tokens=5, activation_checkpointing=True
    )
    torch.manual_seed(0)
    r = plain.generate(["write a note", "hi"], torch.tensor([[0.3, 0.7], [0.9, 0.1]]), 2)
    grads, calls = _grads_and_layer_calls(plain, r)
    ckpt_grads, ckpt_calls = _grads_and_layer_calls(ckpt, r)
    assert (calls, ckpt_calls) == (1, 2)  # each layer runs again in the backward pass
    assert grads.keys() == ckpt_grads.keys() and len(grads) > 0
    for name, g in grads.items():
        torch.testing.assert_close(ckpt_grads[name], g, rtol=1e-5, atol=1e-6, msg=name)


def test_activation_checkpointing_with_lora_and_refused_without_support():
    from peft import LoraConfig

    lora = LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    policy = PreferencePolicy(LexiconLM(seed=3), LexiconTokenizer(), max_new_tokens=4, lora=lora,
                              activation_checkpointing=True)  # fmt: skip
    torch.manual_seed(0)
    grads, calls = _grads_and_layer_calls(policy, policy.generate(["hi"], torch.tensor([[0.5, 0.5]]), 2))
    assert calls == 2 and grads and all("lora_" in n for n in grads)
    with pytest.raises(ValueError, match="policy.init_args.activation_checkpointing"):
        PreferencePolicy(torch.nn.Linear(2, 2), LexiconTokenizer(), activation_checkpointing=True)


def test_save_pretrained_loads_as_a_normal_hf_model(tmp_path):
    from peft import LoraConfig

    policy = PreferencePolicy(
        LexiconLM(seed=4), LexiconTokenizer(), max_new_tokens=4,
        lora=LoraConfig(r=4, target_modules=["q_proj"], init_lora_weights=False),
    )  # fmt: skip
    policy.save_pretrained(tmp_path)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path)
    ids = torch.tensor([[5, 6, 7, 8]])
    assert torch.allclose(loaded(input_ids=ids).logits, policy.model(input_ids=ids).logits, atol=1e-5)
    reloaded = PreferencePolicy(str(tmp_path), max_new_tokens=4)
    assert reloaded.tokenizer.padding_side == "left"


def test_bad_configuration_is_collected_and_named():
    with pytest.raises(ValueError) as err:
        PreferencePolicy(
            LexiconLM(), LexiconTokenizer(), objective_names=["a"], max_new_tokens=0, temperature=0, top_p=1.5,
            dtype="int8", conditioning_template="no field", plain_prompt_template="{prompt}",
        )  # fmt: skip
    msg = str(err.value)
    keys = ["objective_names", "max_new_tokens", "temperature", "top_p", "dtype", "conditioning_template",
            "plain_prompt_template"]  # fmt: skip
    for key in keys:
        assert f"policy.init_args.{key}" in msg


def test_plain_prompt_template_places_the_preference():
    policy = LexiconTask().policy(plain_prompt_template="{prompt}\n{preference}\n")
    text = policy.conditioned_prompts(["hi"], torch.tensor([[0.25, 0.75]]))[0]
    assert text == "hi\nPreference weights: helpfulness=0.25, harmlessness=0.75.\n"


def test_errors(policy, tmp_path):
    with pytest.raises(ValueError, match="tokenizer"):
        PreferencePolicy(LexiconLM())
    with pytest.raises(TypeError, match="policy.init_args.model"):
        PreferencePolicy(42, LexiconTokenizer())
    with pytest.raises(
        FileNotFoundError, match=r"policy.init_args.model`: the policy model folder .* does not exist"
    ):
        PreferencePolicy(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="empty"):
        policy.generate([], torch.zeros(0, 2))
    with pytest.raises(ValueError, match="weights"):
        policy.generate(["hi"], torch.tensor([[0.2, 0.3, 0.5]]))
    with pytest.raises(ValueError, match="simplex"):
        policy.generate(["hi"], torch.tensor([[0.6, 0.6]]))
    with pytest.raises(ValueError, match=r"\[B=2, K\]"):
        policy.generate(["hi", "ho"], torch.tensor([[0.5, 0.5]]))
    short = LexiconTask().policy(max_new_tokens=2, max_prompt_length=5)
    with pytest.raises(ValueError, match="max_prompt_length"):
        short.generate(["write a note about the river"], torch.tensor([[0.5, 0.5]]))


def test_unloadable_tokenizer_names_its_key(tmp_path):
    with pytest.raises(OSError, match=r"policy.init_args.tokenizer`: the tokenizer folder .* does not exist"):
        PreferencePolicy(LexiconLM(), str(tmp_path / "no_tokenizer"))
    (tmp_path / "empty").mkdir()  # exists, but holds no tokenizer
    with pytest.raises(OSError, match=r"policy.init_args.tokenizer.*Hub must be reachable"):
        PreferencePolicy(LexiconLM(), str(tmp_path / "empty"))


@pytest.mark.parametrize("n", [0, -1, 1.5])
def test_generate_refuses_a_bad_num_generations(n):
    policy = LexiconTask().policy(max_new_tokens=2)
    with pytest.raises(ValueError, match=r"`num_generations` must be an integer >= 1"):
        policy.generate(["hi"], torch.tensor([[0.5, 0.5]]), num_generations=n)


def test_missing_local_folders_are_named():
    with pytest.raises(
        FileNotFoundError, match=r"`model.init_args.policy.init_args.model`: the policy model folder"
    ):
        PreferencePolicy("./no_such_model_folder")
    with pytest.raises(
        FileNotFoundError, match=r"`model.init_args.policy.init_args.tokenizer`: the tokenizer folder"
    ):
        PreferencePolicy(LexiconTask().model(), "/no/such/tokenizer")


def test_the_two_pass_length_check_finds_the_pair_the_exact_check_finds():
    """Many prompts: every prompt under one weight, then the longest under every weight, gives the same worst
    pair (and message) as tokenizing every pair."""
    policy = LexiconTask().policy(max_new_tokens=2, max_prompt_length=20)  # "write a note" + w: 20 tokens
    prompts = ["write a note"] * 40 + ["write a note about the river and the city"] + ["a note"] * 40
    weights = torch.tensor([[1.0, 0.0], [0.35, 0.65], [0.5, 0.5]])
    messages = []
    for exact_pairs in (10_000, 1):  # all 243 pairs, then the two passes
        with pytest.raises(ValueError, match="max_prompt_length") as error:
            policy.check_prompt_lengths(prompts, weights, key="data.init_args.train_prompts",
                                        exact_pairs=exact_pairs, candidates=1)  # fmt: skip
        messages.append(str(error.value))
    assert messages[0] == messages[1]
    assert "`data.init_args.train_prompts`" in messages[1]
    assert "('write a note about the river and the cit" in messages[1]
    policy.check_prompt_lengths(
        prompts[:40], weights, key="data.init_args.train_prompts", exact_pairs=1
    )  # fits
