import math

import pytest
import torch
import torch.nn.functional as F

from pareto_lightning.losses import chunked_token_log_probs, token_log_probs
from pareto_lightning.losses.logprobs import rows_log_probs


def _inputs(n=3, t=5, h=8, v=37, dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    hidden = torch.randn(n, t, h, generator=gen, dtype=dtype)
    weight = torch.randn(v, h, generator=gen, dtype=dtype)
    bias = torch.randn(v, generator=gen, dtype=dtype)
    targets = torch.randint(0, v, (n, t), generator=gen)
    upstream = torch.randn(n, t, generator=gen, dtype=torch.float64)  # any gradient from the loss
    return hidden, weight, bias, targets, upstream


def _reference(hidden, weight, bias, targets, temperature):
    """The independent, memory-hungry version: all logits, a full log-softmax, a gather (float64)."""
    logits = F.linear(hidden.double(), weight.double(), None if bias is None else bias.double())  # [N, T, V]
    return torch.log_softmax(logits / temperature, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)


def _value_and_grads(fn, hidden, weight, bias, upstream):
    leaves = [
        x.detach().clone().requires_grad_() for x in (hidden, weight) + ((bias,) if bias is not None else ())
    ]
    out = fn(*leaves)
    (out.double() * upstream).sum().backward()
    return out.detach().double(), [x.grad.double() for x in leaves]


def test_hand_value():
    # The weights make the logits log([1/4, 3/4]) for a hidden state of 1; at temperature 2 the probabilities
    # are [1, sqrt 3] / (1 + sqrt 3).
    weight = torch.log(torch.tensor([[0.25], [0.75]]))  # [V=2, H=1]
    hidden, targets = torch.ones(1, 1, 1), torch.tensor([[1]])
    assert chunked_token_log_probs(hidden, weight, targets).item() == pytest.approx(math.log(0.75))
    got = chunked_token_log_probs(hidden, weight, torch.tensor([[0]]), temperature=2.0).item()
    assert got == pytest.approx(-math.log(1 + math.sqrt(3)))


@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize("temperature", [1.0, 0.7])
@pytest.mark.parametrize("chunk_size", [1, 4, 7, 1000])  # 4 and 7 do not divide N * T = 15
def test_values_and_gradients_match_the_independent_reference(chunk_size, temperature, with_bias):
    hidden, weight, bias, targets, upstream = _inputs()
    bias = bias if with_bias else None
    got = _value_and_grads(lambda h, w, *b: chunked_token_log_probs(h, w, targets, temperature, chunk_size,
                                                                    *b), hidden, weight, bias, upstream)  # fmt: skip
    want = _value_and_grads(lambda h, w, *b: _reference(h, w, b[0] if b else None, targets, temperature),
                            hidden, weight, bias, upstream)  # fmt: skip
    assert got[0].dtype == torch.float64 and len(got[1]) == (3 if with_bias else 2)
    torch.testing.assert_close(got[0], want[0], rtol=1e-5, atol=1e-5)  # float32 reductions of float64 inputs
    for g, w in zip(got[1], want[1], strict=True):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("chunk_size", [2, 6])
def test_float32_matches_the_full_logits_path(chunk_size):
    hidden, weight, bias, targets, upstream = _inputs(dtype=torch.float32, seed=1)
    got = _value_and_grads(lambda h, w, b: chunked_token_log_probs(h, w, targets, 0.9, chunk_size, b),
                           hidden, weight, bias, upstream)  # fmt: skip
    want = _value_and_grads(lambda h, w, b: token_log_probs(F.linear(h, w, b), targets, 0.9),
                            hidden, weight, bias, upstream)  # fmt: skip
    torch.testing.assert_close(got[0], want[0], rtol=1e-5, atol=1e-5)
    for g, w in zip(got[1], want[1], strict=True):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-5)


def test_bfloat16_matches_the_full_logits_path():
    # The logits are formed in bfloat16 (like the output layer's) and reduced in float32, so the values are
    # those of the full path; the gradients differ only by where bfloat16 rounds.
    hidden, weight, _, targets, upstream = _inputs(v=50, dtype=torch.bfloat16, seed=2)
    got = _value_and_grads(lambda h, w: chunked_token_log_probs(h, w, targets, 0.8, 4), hidden, weight, None,
                           upstream)  # fmt: skip
    want = _value_and_grads(lambda h, w: token_log_probs(F.linear(h, w), targets, 0.8), hidden, weight, None,
                            upstream)  # fmt: skip
    torch.testing.assert_close(got[0], want[0], rtol=1e-5, atol=1e-5)
    for g, w in zip(got[1], want[1], strict=True):
        torch.testing.assert_close(g, w, rtol=2e-2, atol=2e-2)


def test_autocast_computes_like_the_layer_and_returns_float32_gradients():
    hidden, weight, _, targets, upstream = _inputs(v=50, dtype=torch.float32, seed=3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = _value_and_grads(lambda h, w: chunked_token_log_probs(h, w, targets, 1.0, 4), hidden, weight,
                               None, upstream)  # fmt: skip
        want = _value_and_grads(lambda h, w: token_log_probs(F.linear(h, w), targets), hidden, weight, None,
                                upstream)  # fmt: skip
    torch.testing.assert_close(got[0], want[0], rtol=1e-5, atol=1e-5)  # both from bfloat16 logits
    for g, w in zip(got[1], want[1], strict=True):
        torch.testing.assert_close(g, w, rtol=2e-2, atol=2e-2)


def test_frozen_weight_gets_no_gradient_and_no_grad_keeps_nothing():
    hidden, weight, _, targets, _ = _inputs(dtype=torch.float32)
    hidden.requires_grad_()
    chunked_token_log_probs(hidden, weight, targets, chunk_size=4).sum().backward()
    assert hidden.grad is not None and weight.grad is None
    with torch.no_grad():
        out = chunked_token_log_probs(hidden, weight, targets, chunk_size=4)
    assert out.grad_fn is None and out.shape == (3, 5) and out.dtype == torch.float32


def test_empty_batch():
    out = chunked_token_log_probs(
        torch.zeros(0, 3, 4), torch.zeros(5, 4), torch.zeros(0, 3, dtype=torch.long)
    )
    assert out.shape == (0, 3)


def test_chunked_token_log_probs_errors():
    hidden, weight, targets = torch.zeros(2, 3, 4), torch.zeros(5, 4), torch.zeros(2, 3, dtype=torch.long)
    for temperature in (0.0, -1.0):
        with pytest.raises(ValueError, match=f"`temperature` must be > 0.*got {temperature}"):
            chunked_token_log_probs(hidden, weight, targets, temperature)
    for chunk_size in (0, 2.5, True):
        with pytest.raises(ValueError, match=f"`chunk_size` must be an integer >= 1.*got {chunk_size!r}"):
            chunked_token_log_probs(hidden, weight, targets, chunk_size=chunk_size)
    shapes = "got hidden \\(2, 3, 4\\), weight \\(5, 3\\) and targets \\(2, 3\\)"
    with pytest.raises(ValueError, match=f"`hidden` must be \\[N, T, H\\].*{shapes}"):
        chunked_token_log_probs(hidden, torch.zeros(5, 3), targets)
    with pytest.raises(
        ValueError, match="got hidden \\(2, 3, 4\\), weight \\(5, 4\\) and targets \\(2, 4\\)"
    ):
        chunked_token_log_probs(hidden, weight, torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="got hidden \\(6, 4\\)"):
        chunked_token_log_probs(torch.zeros(6, 4), weight, targets)
    with pytest.raises(ValueError, match="`bias` must be \\[V=5\\] or None; got \\(4,\\)"):
        chunked_token_log_probs(hidden, weight, targets, bias=torch.zeros(4))
    with pytest.raises(TypeError, match="`targets` must hold integer token ids.*torch.float32"):
        chunked_token_log_probs(hidden, weight, targets.float())
    with pytest.raises(TypeError, match="`hidden` must be a floating point tensor; got dtype torch.int64"):
        chunked_token_log_probs(hidden.long(), weight, targets)
    with pytest.raises(TypeError, match="one dtype outside autocast.*got torch.float32, torch.float64 and"):
        chunked_token_log_probs(hidden, weight.double(), targets, bias=torch.zeros(5))


@pytest.mark.parametrize("temperature", [1.0, 0.6])
def test_rows_log_probs_in_place_gives_the_same_numbers(temperature):
    gen = torch.Generator().manual_seed(4)
    logits = torch.randn(4, 9, generator=gen) * 5
    logits[1, 3] = logits[2] = float("-inf")  # a masked token, and a row with nothing allowed
    targets = torch.tensor([0, 1, 2, 8])
    want = rows_log_probs(logits, targets, temperature)
    got = rows_log_probs(logits.clone(), targets, temperature, overwrite=True)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-6, atol=1e-6, equal_nan=True)
    assert got[1][2] == float("-inf") and torch.isfinite(got[0][[0, 1, 3]]).all()
