"""Non-finite states fail with our error (not a device-side assert), and padding never makes a forward non-finite."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from pareto_lightning.finite import (
    FiniteLogitsGuard,
    NonFiniteError,
    nonfinite_rows,
    use_safe_attention_kernels,
)
from pareto_lightning.rollout import position_ids
from pareto_lightning.tasks import LexiconTask

HERE = Path(__file__).resolve().parent


def test_nonfinite_rows_accepts_filtered_rows_and_flags_the_rest():
    inf, nan = float("inf"), float("nan")
    scores = torch.tensor([[0.0, -inf, 2.0], [nan, 0.0, 0.0], [0.0, inf, 0.0], [-inf, -inf, -inf]])
    assert nonfinite_rows(scores).tolist() == [False, True, True, True]


def test_guard_makes_bad_rows_samplable_and_reports_them_once():
    guard = FiniteLogitsGuard()
    ids = torch.zeros(2, 1, dtype=torch.long)
    out = guard(ids, torch.tensor([[1.0, 2.0], [float("nan"), 1.0]]))
    assert torch.equal(out, torch.tensor([[1.0, 2.0], [0.0, 0.0]]))
    guard(ids, torch.tensor([[1.0, 2.0], [0.0, 1.0]]))  # a later finite step does not clear the flag
    with pytest.raises(NonFiniteError, match=r"non-finite logits \(NaN/inf\) in 1 of 2 rows here"):
        guard.raise_if_found("here")
    FiniteLogitsGuard().raise_if_found("never called")  # nothing generated: nothing to report


@pytest.mark.parametrize("do_sample", [True, False])
def test_generate_refuses_nan_weights_with_our_error(do_sample):
    torch.manual_seed(0)
    policy = LexiconTask().policy(max_new_tokens=3)
    with torch.no_grad():
        policy.model.model.norm.weight.fill_(float("nan"))
    with pytest.raises(NonFiniteError, match=r"non-finite logits .* while generating \(before sampling\)"):
        policy.generate(["write a note about the river"], torch.tensor([[0.5, 0.5]]), 2, do_sample=do_sample)


def test_safe_attention_kernels_only_change_cuda_runs():
    before = torch.backends.cuda.cudnn_sdp_enabled()
    assert use_safe_attention_kernels(torch.device("cpu")) is False
    assert use_safe_attention_kernels(torch.device("cuda", 0), allow_cudnn=True) is False
    assert torch.backends.cuda.cudnn_sdp_enabled() == before
    try:
        assert use_safe_attention_kernels(torch.device("cuda", 0)) is True
        assert torch.backends.cuda.cudnn_sdp_enabled() is False
    finally:
        torch.backends.cuda.enable_cudnn_sdp(before)


@pytest.mark.parametrize("implementation", ["sdpa", "eager"])
def test_left_padding_gives_finite_outputs_and_gradients_equal_to_unpadded_rows(implementation):
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, intermediate_size=64, attn_implementation=implementation)  # fmt: skip
    model = Qwen2ForCausalLM(config)
    ids = torch.randint(1, 64, (2, 8))
    mask = torch.ones_like(ids)
    mask[0, :5] = 0  # row 0: five fully masked padding positions on the left
    out = model(input_ids=ids, attention_mask=mask, position_ids=position_ids(mask), output_hidden_states=True)
    assert all(torch.isfinite(h).all() for h in out.hidden_states)  # the padding rows too
    out.logits[:, -3:].float().logsumexp(-1).sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    alone = model(input_ids=ids[:1, 5:]).logits  # row 0 without its padding
    torch.testing.assert_close(out.logits[:1, 5:], alone, atol=1e-5, rtol=1e-5)


def test_fsdp2_generation_after_a_first_unshard_under_inference_mode():
    env = {**os.environ, "PYTHONPATH": str(HERE.parents[2])}
    done = subprocess.run([sys.executable, str(HERE / "_inference_mode_unshard_script.py")], env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.stdout.strip().splitlines()[-1:] == ["ok"], done.stdout[-2000:] + done.stderr[-2000:]
