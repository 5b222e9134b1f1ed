"""``PreferencePolicy.log_probs`` from the output layer in chunks against the full-logits path."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from peft import LoraConfig
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from transformers import AutoConfig, AutoModelForCausalLM

from pareto_lightning.policy import PreferencePolicy
from pareto_lightning.rollout import Rollout
from pareto_lightning.scoring import PLAIN_OUTPUT_LAYER_TYPES, output_layer
from pareto_lightning.tasks import LexiconLM, LexiconTokenizer

HERE = Path(__file__).parent
VOCAB = 91  # the lexicon's vocabulary


class LargestVocabTensor(TorchDispatchMode):
    """Records the most elements of any tensor an op returns whose last dimension is the vocabulary."""

    def __init__(self, vocab: int) -> None:
        super().__init__()
        self.vocab, self.largest = vocab, 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.dim() >= 2 and t.shape[-1] == self.vocab:
                self.largest = max(self.largest, t.numel())
        return out


def _rollout(n: int = 4, t: int = 6, seed: int = 0) -> Rollout:
    """Left-padded prompts of different lengths and completions that end early (EOS then padding)."""
    gen = torch.Generator().manual_seed(seed)
    prompt_ids = torch.randint(3, VOCAB, (n, 5), generator=gen)  # [N, P]
    prompt_mask = torch.ones_like(prompt_ids)
    prompt_mask[1, :2] = prompt_mask[3, :1] = 0  # left padding
    prompt_ids[prompt_mask == 0] = 0
    completion_ids = torch.randint(3, VOCAB, (n, t), generator=gen)  # [N, T]
    completion_mask = torch.ones_like(completion_ids)
    completion_ids[0, 3], completion_ids[0, 4:], completion_mask[0, 4:] = 2, 0, 0  # EOS then padding
    return Rollout(prompts=["p"] * n, prompt_ids=prompt_ids, prompt_mask=prompt_mask, completion_ids=completion_ids,
                   completion_mask=completion_mask, completions=["c"] * n, weights=torch.full((n, 2), 0.5),
                   group_size=2)  # fmt: skip


def _values_and_grads(policy: PreferencePolicy, rollout: Rollout, chunk: int | None):
    policy.logprob_chunk_size = chunk
    policy.model.zero_grad()
    torch.manual_seed(2)  # the same dropout masks in both paths (GPT-2 and OPT train with dropout)
    logp = policy.log_probs(rollout)  # [N, T]
    upstream = torch.randn(logp.shape, generator=torch.Generator().manual_seed(1))  # any upstream gradient
    (logp * upstream * rollout.completion_mask).sum().backward()
    grads = {n: p.grad.clone() for n, p in policy.named_parameters() if p.grad is not None}
    return logp.detach(), grads


def _assert_same(policy: PreferencePolicy, rollout: Rollout, chunk: int) -> None:
    want, want_grads = _values_and_grads(policy, rollout, None)
    got, got_grads = _values_and_grads(policy, rollout, chunk)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert got_grads.keys() == want_grads.keys() and len(got_grads) > 0
    for name, grad in want_grads.items():
        torch.testing.assert_close(got_grads[name], grad, rtol=1e-5, atol=1e-5, msg=name)


def _policy(model, **kwargs) -> PreferencePolicy:
    return PreferencePolicy(model, LexiconTokenizer(), max_new_tokens=6, temperature=0.7, **kwargs)


@pytest.mark.parametrize("chunk", [1, 5, 7, 4096])  # 5 and 7 do not divide N * T = 24
def test_same_values_and_gradients_as_the_full_logits(chunk):
    policy = _policy(LexiconLM(seed=3))
    # Tied: the output layer's weight is the input embeddings', and both uses give it gradients.
    assert policy.model.lm_head.weight is policy.model.model.embed_tokens.weight
    _assert_same(policy, _rollout(), chunk)


def test_same_values_and_gradients_with_lora():
    torch.manual_seed(0)  # the adapter's random start (init_lora_weights=False: B is not zero)
    lora = LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    policy = _policy(LexiconLM(seed=3), lora=lora)
    assert output_layer(policy.model) is policy.model.get_base_model().lm_head
    _assert_same(policy, _rollout(), 5)
    rollout = _rollout()
    with policy.model.disable_adapter(), torch.no_grad():  # the reference of a LoRA policy
        policy.logprob_chunk_size = 5
        reference = policy.log_probs(rollout)
    plain = _policy(LexiconLM(seed=3), logprob_chunk_size=None)
    torch.testing.assert_close(reference, plain.log_probs(rollout).detach(), rtol=1e-5, atol=1e-5)


_TINY = dict(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
             intermediate_size=64, head_dim=16, max_position_embeddings=64, n_positions=64, pad_token_id=0,
             bos_token_id=1, eos_token_id=2, word_embed_proj_dim=32, ffn_dim=64, num_experts=2,
             num_experts_per_tok=1, moe_intermediate_size=32, shared_expert_intermediate_size=32)  # fmt: skip


@pytest.mark.parametrize("model_type", sorted(PLAIN_OUTPUT_LAYER_TYPES))
def test_every_listed_architecture_gives_the_full_logits_results(model_type):
    # Checks the list against the installed transformers: a listed model must return lm_head(last hidden state).
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(AutoConfig.for_model(model_type, **_TINY))
    policy = _policy(model)
    assert output_layer(policy.model) is model.get_output_embeddings()
    _assert_same(policy, _rollout(), 5)


def test_models_that_change_their_logits_keep_the_full_path():
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(AutoConfig.for_model("gemma2", **_TINY))  # soft-capped logits
    assert output_layer(model) is None
    policy, rollout = _policy(model, logprob_chunk_size=5), _rollout()
    logits = policy.completion_logits(rollout)
    want = torch.log_softmax(logits / 0.7, -1).gather(-1, rollout.completion_ids[..., None])[..., 0]
    torch.testing.assert_close(policy.log_probs(rollout), want, rtol=1e-5, atol=1e-5)
    on_head = LoraConfig(r=2, target_modules=["lm_head"])
    # An adapter on the output layer changes the logits too.
    assert output_layer(_policy(LexiconLM(seed=1), lora=on_head).model) is None


def test_the_full_logits_never_exist():
    # Fails on the full-logits path: it forms [N, T+1, V] logits (and their gradient). The chunk (80 positions)
    # is wider than the hidden size (64), so the output layer's transposed weight [H, V] is not the largest.
    policy, rollout = _policy(LexiconLM(seed=3), logprob_chunk_size=80), _rollout(n=8, t=12)  # N * T = 96
    with LargestVocabTensor(VOCAB) as seen:
        policy.log_probs(rollout).sum().backward()
    assert seen.largest == 80 * VOCAB < rollout.completion_ids.numel() * VOCAB


def test_logprob_chunk_size_is_checked():
    for bad in (0, -3, 2.5, True):
        with pytest.raises(
            ValueError, match=rf"`model.init_args.policy.init_args.logprob_chunk_size` must be an integer >= 1 or "
            rf"null; got {bad!r}"
        ):  # fmt: skip
            _policy(LexiconLM(seed=0), logprob_chunk_size=bad)
    assert _policy(LexiconLM(seed=0), logprob_chunk_size=None).logprob_chunk_size is None


def test_fsdp2_sharded_policy_gives_the_same_values_and_gradients():
    env = {**os.environ, "PYTHONPATH": str(HERE.parents[2])}
    done = subprocess.run([sys.executable, str(HERE / "_chunked_log_probs_fsdp_script.py")], env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.stdout.strip().splitlines()[-1:] == ["ok"], done.stdout[-2000:] + done.stderr[-2000:]
