import math
import statistics

import pytest
import torch

from pareto_lightning.losses import GRPOStats, group_advantages, grpo_loss, zero_spread_fraction

LN2 = math.log(2.0)


# ------------------------------------------------------------------------------------------ group_advantages
def _reference_advantages(u: list[float], g: int, scale: str) -> list[float]:
    """Independent loop with the statistics module (stdev is Bessel-corrected)."""
    out = []
    batch_std = statistics.stdev(u)
    for start in range(0, len(u), g):
        group = u[start : start + g]
        mean = statistics.mean(group)
        if max(group) - min(group) <= 1e-8:
            out += [0.0] * g
            continue
        std = {"group": statistics.stdev(group), "batch": batch_std, "none": None}[scale]
        out += [(x - mean) / (std + 1e-4) if std is not None else x - mean for x in group]
    return out


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
@pytest.mark.parametrize("g", [2, 3, 8])
def test_group_advantages_match_reference_loop(scale, g):
    gen = torch.Generator().manual_seed(g)
    u = torch.rand(5 * g, generator=gen, dtype=torch.float64) * 3 - 1
    u[:g] = 0.7  # one tied group among random ones
    expected = torch.tensor(_reference_advantages(u.tolist(), g, scale), dtype=torch.float64)
    torch.testing.assert_close(group_advantages(u, g, scale=scale), expected, rtol=1e-12, atol=1e-12)


def test_group_advantages_hand_values():
    u = torch.tensor([1.0, 2.0, 3.0, 10.0, 20.0, 30.0])
    # group 0: mean 2, Bessel std sqrt((1 + 0 + 1) / 2) = 1; group 1: mean 20, std 10
    torch.testing.assert_close(
        group_advantages(u, 3), torch.tensor([-1 / 1.0001, 0.0, 1 / 1.0001, -10 / 10.0001, 0.0, 10 / 10.0001])
    )
    # batch std of the six values: mean 11, squared deviations 100+81+64+1+81+361 = 688, / 5 -> sqrt(137.6)
    s = math.sqrt(137.6) + 1e-4
    torch.testing.assert_close(
        group_advantages(u, 3, scale="batch"), torch.tensor([-1 / s, 0.0, 1 / s, -10 / s, 0.0, 10 / s])
    )
    torch.testing.assert_close(group_advantages(u, 3, scale="none"), torch.tensor([-1.0, 0, 1, -10, 0, 10]))


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
def test_equal_utilities_give_exact_zeros(scale):
    # 0.1 is not exact in binary: the float mean of three copies need not equal 0.1, yet the result must be 0.
    u = torch.tensor([0.1, 0.1, 0.1, 1 / 3, 1 / 3, 1 / 3], dtype=torch.float32)
    adv = group_advantages(u, 3, scale=scale)
    assert torch.equal(adv, torch.zeros(6))
    assert zero_spread_fraction(u, 3) == 1.0


def test_group_advantages_keep_dtype_and_order():
    u = torch.tensor([3.0, 1.0, 2.0, 2.0], dtype=torch.float64)
    adv = group_advantages(u, 2)
    assert adv.dtype == torch.float64
    assert adv[0] > 0 > adv[1] and adv[2] == adv[3] == 0


def test_zero_spread_fraction():
    u = torch.tensor([1.0, 1.0, 1.0 + 1e-9, 0.0, 0.5, 2.0, 5.0, 5.0, 5.0])
    assert zero_spread_fraction(u, 3) == pytest.approx(2 / 3)  # groups 0 (within 1e-8) and 2 are flat
    assert zero_spread_fraction(torch.tensor([0.0, 1.0]), 2) == 0.0


@pytest.mark.parametrize("fn", [group_advantages, zero_spread_fraction])
def test_group_input_errors(fn):
    with pytest.raises(ValueError, match="`num_generations`.*>= 2.*got 1"):
        fn(torch.zeros(4), 1)
    with pytest.raises(ValueError, match="`num_generations`"):
        fn(torch.zeros(4), 2.0)
    with pytest.raises(ValueError, match="B \\* num_generations.*got shape \\(5,\\) for num_generations=2"):
        fn(torch.zeros(5), 2)
    with pytest.raises(ValueError, match="1-D"):
        fn(torch.zeros(2, 2), 2)
    with pytest.raises(TypeError, match="floating-point.*torch.int64"):
        fn(torch.zeros(4, dtype=torch.long), 2)


def test_group_advantages_unknown_scale():
    with pytest.raises(ValueError, match="advantage_scale.*'group', 'batch' or 'none'; got 'std'"):
        group_advantages(torch.zeros(4), 2, scale="std")


# ------------------------------------------------------------------------------------------------- grpo_loss
def _const(value: float, n: int = 1, t: int = 1) -> torch.Tensor:
    return torch.full((n, t), value, dtype=torch.float64)


def _ratio_case(rho: float, adv: float, **kwargs):
    """One token with ratio ``rho``: old_logp = 0, logp = ln rho (a leaf, so its gradient can be read)."""
    logp = _const(math.log(rho)).requires_grad_()
    loss, stats = grpo_loss(logp, _const(0.0), None, torch.tensor([adv]), torch.ones(1, 1), **kwargs)
    loss.backward()
    return loss.item(), logp.grad.item(), stats


@pytest.mark.parametrize("aggregation", ["sequence_mean", "token_mean"])
def test_ratio_one_gives_minus_mean_advantage(aggregation):
    # Equal lengths, so both aggregations reduce to -mean(A) = -(1 - 2 + 0.5) / 3 = 0.1666...
    logp = torch.randn(3, 4, dtype=torch.float64)
    adv = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    loss, stats = grpo_loss(
        logp, logp.clone(), None, adv, torch.ones(3, 4, dtype=torch.bool), aggregation=aggregation
    )
    assert loss.item() == pytest.approx(1 / 6)
    assert stats.ratio_mean.item() == pytest.approx(1.0)
    assert stats.clip_fraction.item() == 0.0 and stats.kl.item() == 0.0
    assert stats.advantage_mean.item() == pytest.approx(-1 / 6)
    # population std: deviations 7/6, -11/6, 4/6 -> (49 + 121 + 16) / 36 / 3 = 186 / 108
    assert stats.advantage_std.item() == pytest.approx(math.sqrt(186 / 108))


def test_clipping_hand_values_and_gradients():
    # rho = 1.5, A = +1: -min(1.5, 1.2) = -1.2, clipped term active -> no gradient.
    loss, grad, stats = _ratio_case(1.5, 1.0)
    assert loss == pytest.approx(-1.2) and grad == 0.0 and stats.clip_fraction.item() == 1.0
    # rho = 0.5, A = -1: -min(-0.5, -0.8) = 0.8, clipped active -> no gradient.
    loss, grad, stats = _ratio_case(0.5, -1.0)
    assert loss == pytest.approx(0.8) and grad == 0.0 and stats.clip_fraction.item() == 1.0
    # rho = 0.5, A = +1: min(0.5, 0.8) = 0.5 is the unclipped term: d(-rho)/dlogp = -rho = -0.5.
    loss, grad, stats = _ratio_case(0.5, 1.0)
    assert loss == pytest.approx(-0.5) and grad == pytest.approx(-0.5) and stats.clip_fraction.item() == 0.0
    # rho = 1.5, A = -1: min(-1.5, -1.2) = -1.5 unclipped: loss 1.5, d(rho)/dlogp = 1.5.
    loss, grad, stats = _ratio_case(1.5, -1.0)
    assert loss == pytest.approx(1.5) and grad == pytest.approx(1.5) and stats.clip_fraction.item() == 0.0
    # rho = 1.1 inside the band, A = +2: loss -2.2, gradient -2.2.
    loss, grad, _ = _ratio_case(1.1, 2.0)
    assert loss == pytest.approx(-2.2) and grad == pytest.approx(-2.2)


def test_epsilon_high_is_asymmetric():
    # rho = 1.25, A = +1: clipped to 1.2 with eps 0.2, free under eps_high 0.28.
    assert _ratio_case(1.25, 1.0)[0] == pytest.approx(-1.2)
    loss, grad, stats = _ratio_case(1.25, 1.0, epsilon_high=0.28)
    assert loss == pytest.approx(-1.25) and grad == pytest.approx(-1.25) and stats.clip_fraction.item() == 0.0
    assert _ratio_case(1.5, 1.0, epsilon_high=0.28)[0] == pytest.approx(-1.28)
    # The lower bound still uses epsilon: rho = 0.75, A = -1 -> -min(-0.75, -0.8) = 0.8.
    assert _ratio_case(0.75, -1.0, epsilon_high=0.28)[0] == pytest.approx(0.8)


def test_clip_fraction_counts_only_active_clips_on_masked_tokens():
    # (rho, A): (1.5, +1) clipped, (0.5, +1) not, (0.5, -1) clipped, (1.5, -1) not; a padded token with rho 3.
    rho = torch.tensor([[1.5, 0.5, 3.0], [0.5, 1.5, 3.0]], dtype=torch.float64)
    mask = torch.tensor([[1, 1, 0], [1, 1, 0]])
    _, stats = grpo_loss(rho.log(), torch.zeros(2, 3), None, torch.tensor([1.0, -1.0]), mask)
    assert stats.clip_fraction.item() == pytest.approx(0.5)
    assert stats.ratio_mean.item() == pytest.approx(1.0)  # (1.5 + 0.5 + 0.5 + 1.5) / 4; padding excluded


def test_token_mean_and_sequence_mean_differ_on_unequal_lengths():
    # rho = 1. Sequence 0: 3 tokens with A = 1 -> per-token -1; sequence 1: 1 token with A = -2 -> +2.
    # sequence_mean: mean(-3/3, 2/1) = 0.5.  token_mean: (-1 - 1 - 1 + 2) / 4 = -0.25.
    logp = torch.zeros(2, 3)
    mask = torch.tensor([[True, True, True], [True, False, False]])
    adv = torch.tensor([1.0, -2.0])
    seq, _ = grpo_loss(logp, logp, None, adv, mask, aggregation="sequence_mean")
    tok, _ = grpo_loss(logp, logp, None, adv, mask, aggregation="token_mean")
    assert seq.item() == pytest.approx(0.5)
    assert tok.item() == pytest.approx(-0.25)


def test_k3_kl_hand_values_and_gradient():
    # d = ref - logp = ln 2: k3 = 2 - ln 2 - 1 = 0.30685; d = -ln 2: k3 = 0.5 + ln 2 - 1 = 0.19315.
    logp = torch.zeros(1, 2, dtype=torch.float64, requires_grad=True)
    ref = torch.tensor([[LN2, -LN2]], dtype=torch.float64)
    loss, stats = grpo_loss(logp, logp.detach(), ref, torch.zeros(1), torch.ones(1, 2), beta=0.5)
    k3 = (1 - LN2, LN2 - 0.5)
    assert stats.kl.item() == pytest.approx(sum(k3) / 2)
    assert loss.item() == pytest.approx(0.5 * sum(k3) / 2)  # A = 0: only the KL term
    loss.backward()
    # dk3/dlogp = 1 - exp(d): -1 at d = ln 2 and +0.5 at d = -ln 2; times beta / T = 0.25.
    torch.testing.assert_close(logp.grad, torch.tensor([[-0.25, 0.125]], dtype=torch.float64))


def test_beta_zero_reports_kl_but_does_not_add_it():
    logp = torch.zeros(1, 1)
    ref = torch.full((1, 1), LN2)
    loss, stats = grpo_loss(logp, logp, ref, torch.tensor([1.0]), torch.ones(1, 1), beta=0.0)
    assert loss.item() == pytest.approx(-1.0)
    assert stats.kl.item() == pytest.approx(1 - LN2)


def test_empty_sequence_and_garbage_padding_give_no_nan():
    # Sequence 1 has no completion token; padding holds -inf and huge values.
    logp = torch.tensor([[0.0, -math.inf], [1e4, -math.inf]], requires_grad=True)
    old = torch.tensor([[0.0, 5.0], [-1e4, 0.0]])
    ref = torch.tensor([[LN2, 0.0], [0.0, -1e4]])
    mask = torch.tensor([[1, 0], [0, 0]])
    for aggregation, expected in [
        ("sequence_mean", (-1 + 0.1 * (1 - LN2)) / 2),
        ("token_mean", -1 + 0.1 * (1 - LN2)),
    ]:
        loss, stats = grpo_loss(
            logp, old, ref, torch.tensor([1.0, 5.0]), mask, beta=0.1, aggregation=aggregation
        )
        loss.backward()
        assert loss.item() == pytest.approx(expected, rel=1e-6)
        assert torch.isfinite(logp.grad).all() and logp.grad[0, 1] == 0 and (logp.grad[1] == 0).all()
        assert all(torch.isfinite(v) for v in stats)
        logp.grad = None
    _, stats = grpo_loss(logp, old, None, torch.tensor([1.0, 5.0]), torch.zeros(2, 2))
    assert stats.ratio_mean.item() == 0.0 and stats.clip_fraction.item() == 0.0


def test_stats_are_detached_and_named():
    logp = torch.zeros(2, 2, requires_grad=True)
    _, stats = grpo_loss(
        logp, logp.detach() - 0.1, logp.detach(), torch.tensor([1.0, -1.0]), torch.ones(2, 2)
    )
    assert isinstance(stats, GRPOStats)
    assert not any(v.requires_grad for v in stats)
    assert set(stats._asdict()) == {"kl", "clip_fraction", "advantage_mean", "advantage_std", "ratio_mean"}


def test_loss_is_not_divided_by_anything_but_the_token_counts():
    # Doubling the batch with identical rows leaves the loss unchanged (no hidden accumulation divisor).
    logp = torch.randn(2, 3)
    adv = torch.tensor([0.3, -1.2])
    mask = torch.ones(2, 3)
    one, _ = grpo_loss(logp, logp, None, adv, mask)
    two, _ = grpo_loss(logp.repeat(2, 1), logp.repeat(2, 1), None, adv.repeat(2), mask.repeat(2, 1))
    assert one.item() == pytest.approx(0.45) and two.item() == pytest.approx(0.45)


def test_grpo_loss_errors():
    logp, adv, mask = torch.zeros(2, 3), torch.zeros(2), torch.ones(2, 3)
    with pytest.raises(ValueError, match="`epsilon`.*must be > 0; got 0.0 and None"):
        grpo_loss(logp, logp, None, adv, mask, epsilon=0.0)
    with pytest.raises(ValueError, match="`epsilon_high`.*got 0.2 and -0.1"):
        grpo_loss(logp, logp, None, adv, mask, epsilon_high=-0.1)
    with pytest.raises(ValueError, match="`beta`.*>= 0; got -0.1"):
        grpo_loss(logp, logp, logp, adv, mask, beta=-0.1)
    with pytest.raises(ValueError, match="'sequence_mean' or 'token_mean'; got 'sum'"):
        grpo_loss(logp, logp, None, adv, mask, aggregation="sum")
    with pytest.raises(ValueError, match="`ref_logp` is required when `beta` > 0"):
        grpo_loss(logp, logp, None, adv, mask, beta=0.1)
    with pytest.raises(ValueError, match="`logp` must be \\[N, T\\]"):
        grpo_loss(torch.zeros(3), torch.zeros(3), None, torch.zeros(3), torch.ones(3))
    with pytest.raises(
        ValueError, match="`old_logp` must have the shape of `logp` \\(2, 3\\); got \\(2, 4\\)"
    ):
        grpo_loss(logp, torch.zeros(2, 4), None, adv, mask)
    with pytest.raises(ValueError, match="`ref_logp` must have the shape"):
        grpo_loss(logp, logp, torch.zeros(3, 3), adv, mask, beta=0.1)
    with pytest.raises(ValueError, match="`mask` must have the shape"):
        grpo_loss(logp, logp, None, adv, torch.ones(2, 2))
    with pytest.raises(ValueError, match="`advantages` must be \\[N\\] = \\[2\\]; got shape \\(2, 1\\)"):
        grpo_loss(logp, logp, None, adv[:, None], mask)
