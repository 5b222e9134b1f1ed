import math

import pytest
import torch

from pareto_lightning.losses import token_log_probs


def _reference(logits: torch.Tensor, targets: torch.Tensor, temperature: float) -> torch.Tensor:
    """The straightforward (memory-hungry) version: full log-softmax, then gather."""
    full = torch.log_softmax(logits.double() / temperature, dim=-1)  # [N, T, V]
    return full.gather(-1, targets.unsqueeze(-1)).squeeze(-1)


def test_hand_value():
    # softmax([0, ln 3]) = [1/4, 3/4]; at temperature 2: softmax([0, ln 3 / 2]) = [1, sqrt 3] / (1 + sqrt 3)
    logits = torch.tensor([[[0.0, math.log(3.0)]]])
    assert token_log_probs(logits, torch.tensor([[1]])).item() == pytest.approx(math.log(0.75))
    got = token_log_probs(logits, torch.tensor([[0]]), temperature=2.0).item()
    assert got == pytest.approx(-math.log(1 + math.sqrt(3)))


@pytest.mark.parametrize("temperature", [1.0, 0.7, 1.3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matches_log_softmax_gather(temperature, dtype):
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 5, 11, generator=gen, dtype=dtype) * 4
    targets = torch.randint(0, 11, (3, 5), generator=gen)
    got = token_log_probs(logits, targets, temperature)
    assert got.dtype == torch.float32 and got.shape == (3, 5)
    torch.testing.assert_close(got.double(), _reference(logits, targets, temperature), rtol=1e-5, atol=1e-5)


def test_half_precision_logits_are_upcast():
    gen = torch.Generator().manual_seed(1)
    logits = (torch.randn(2, 4, 50, generator=gen) * 8).to(torch.bfloat16)
    targets = torch.randint(0, 50, (2, 4), generator=gen)
    got = token_log_probs(logits, targets, temperature=0.9)
    assert got.dtype == torch.float32
    # Compared with the float64 computation on the same bfloat16 values: only float32 rounding remains.
    torch.testing.assert_close(got.double(), _reference(logits, targets, 0.9), rtol=1e-5, atol=1e-5)


def test_gradient_matches_reference():
    gen = torch.Generator().manual_seed(2)
    base = torch.randn(2, 3, 7, generator=gen, dtype=torch.float64)
    targets = torch.randint(0, 7, (2, 3), generator=gen)
    a, b = base.clone().requires_grad_(), base.clone().requires_grad_()
    token_log_probs(a, targets, 0.8).sum().backward()
    _reference(b, targets, 0.8).sum().backward()
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-6)


def test_empty_batch():
    assert token_log_probs(torch.zeros(0, 3, 5), torch.zeros(0, 3, dtype=torch.long)).shape == (0, 3)


def test_token_log_probs_errors():
    logits, targets = torch.zeros(2, 3, 5), torch.zeros(2, 3, dtype=torch.long)
    for temperature in (0.0, -1.0):
        with pytest.raises(ValueError, match=f"`temperature` must be > 0.*got {temperature}"):
            token_log_probs(logits, targets, temperature)
    with pytest.raises(ValueError, match="\\[N, T, V\\].*got logits \\(2, 3, 5\\) and targets \\(2, 4\\)"):
        token_log_probs(logits, torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="got logits \\(2, 15\\)"):
        token_log_probs(torch.zeros(2, 15), targets)
    with pytest.raises(TypeError, match="integer token ids.*torch.float32"):
        token_log_probs(logits, targets.float())
