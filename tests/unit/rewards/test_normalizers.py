import io

import pytest
import torch

from pareto_lightning.rewards import IdentityNormalizer, MaxNormalizer, TanhNormalizer, ZScoreNormalizer
from pareto_lightning.rewards.functional import check_finite_rewards, merge_moments, moments_across_ranks


def _batches(seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    # different sizes, scales and offsets per objective, so a wrong weighting or axis shows
    sizes = [3, 7, 1, 12, 5]
    return [
        torch.randn(n, 3, generator=g) * torch.tensor([1.0, 10.0, 0.1]) + torch.tensor([0.0, -5.0, 3.0])
        for n in sizes
    ]


# ----------------------------------------------------------------------------------------------- ZScoreNormalizer
def test_standardizer_matches_mean_and_variance_of_everything_seen():
    std = ZScoreNormalizer()
    seen = []
    for batch in _batches():
        out = std(batch)
        seen.append(batch)
        data = torch.cat(seen).double()  # [N_total, K]
        mean, var = data.mean(0), data.var(0, unbiased=False)
        torch.testing.assert_close(std.mean, mean)
        torch.testing.assert_close(std.var, var)
        assert std.count.item() == data.shape[0]
        # the batch is normalized with the statistics that already include it
        expected = ((batch.double() - mean) / (var + 1e-8).sqrt()).float()
        torch.testing.assert_close(out, expected)
        assert out.dtype == torch.float32
    assert int(std.num_updates) == len(_batches())


def test_standardizer_is_stable_with_a_large_offset():
    # sum-of-squares formulas lose everything here in float32; the moment merge does not
    batches = [1e6 + b[:, :1] for b in _batches(1)]
    std = ZScoreNormalizer()
    for b in batches:
        std.update(b.double())
    data = torch.cat(batches).double()
    torch.testing.assert_close(std.var, data.var(0, unbiased=False), rtol=1e-9, atol=0)


def test_standardizer_constant_objective_maps_to_zero():
    std = ZScoreNormalizer()
    out = std(torch.tensor([[1.0, 5.0], [3.0, 5.0]]))
    torch.testing.assert_close(out, torch.tensor([[-1.0, 0.0], [1.0, 0.0]]))


def test_merge_moments_against_brute_force():
    a, b = _batches(2)[:2]
    na, ma, m2a = moments_across_ranks(a.double())
    nb, mb, m2b = moments_across_ranks(b.double())
    n, mean, m2 = merge_moments(na, ma, m2a, nb, mb, m2b)
    both = torch.cat([a, b]).double()
    assert n.item() == both.shape[0]
    torch.testing.assert_close(mean, both.mean(0))
    torch.testing.assert_close(m2, ((both - both.mean(0)) ** 2).sum(0))
    # merging into an empty set gives the batch itself
    zero = torch.zeros(3, dtype=torch.float64)
    n0, mean0, m20 = merge_moments(torch.tensor(0.0, dtype=torch.float64), zero, zero, nb, mb, m2b)
    assert n0.item() == b.shape[0]
    torch.testing.assert_close(mean0, mb)
    torch.testing.assert_close(m20, m2b)


# -------------------------------------------------------------------------------------------------- MaxNormalizer
def test_max_scaler_hand_worked():
    scaler = MaxNormalizer()
    out1 = scaler(torch.tensor([[1.0, -2.0], [3.0, 1.0]]))  # max |r| = [3, 2]
    torch.testing.assert_close(out1, torch.tensor([[1 / 3, -1.0], [1.0, 0.5]]))
    out2 = scaler(torch.tensor([[-4.0, 0.5]]))  # running max |r| = [4, 2]
    torch.testing.assert_close(out2, torch.tensor([[-1.0, 0.25]]))
    torch.testing.assert_close(scaler.max_abs, torch.tensor([4.0, 2.0], dtype=torch.float64))
    # eval mode: only normalizes
    scaler.eval()
    torch.testing.assert_close(scaler(torch.tensor([[8.0, 1.0]])), torch.tensor([[2.0, 0.5]]))
    torch.testing.assert_close(scaler.max_abs, torch.tensor([4.0, 2.0], dtype=torch.float64))


def test_max_scaler_leaves_an_all_zero_objective_unscaled():
    scaler = MaxNormalizer()
    scaler.update(torch.tensor([[0.0, 2.0]]))
    torch.testing.assert_close(scaler.normalize(torch.tensor([[0.5, 1.0]])), torch.tensor([[0.5, 0.5]]))


def test_normalize_without_statistics_is_identity_and_does_not_update():
    for norm in (MaxNormalizer(), ZScoreNormalizer()):
        x = torch.tensor([[3.0, -1.0]])
        assert torch.equal(norm.normalize(x), x)
        assert torch.equal(norm.eval()(x), x)
        assert int(norm.num_updates) == 0 and norm.num_objectives is None


def test_statistics_are_resized_in_place():
    # DDP keeps references to the buffers it broadcasts: sizing them must not replace the tensor objects
    scaler = MaxNormalizer()
    before = scaler.max_abs
    scaler.update(torch.ones(2, 3))
    assert scaler.max_abs is before and scaler.num_objectives == 3


# ------------------------------------------------------------------------------------- freeze, checkpoint
@pytest.mark.parametrize("cls", [MaxNormalizer, ZScoreNormalizer])
def test_freeze_after(cls):
    batches = _batches()
    norm = cls(freeze_after=2)
    for b in batches[:2]:
        norm(b)
    assert norm.frozen
    state = {k: v.clone() for k, v in norm.state_dict().items()}
    for b in batches[2:]:
        norm(b)
        norm.update(b)
    for key, value in norm.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert int(norm.num_updates) == 2
    # freeze_after=0 never updates: rewards pass through
    never = cls(freeze_after=0)
    assert torch.equal(never(batches[0]), batches[0]) and never.num_objectives is None


@pytest.mark.parametrize("cls", [MaxNormalizer, ZScoreNormalizer])
def test_state_dict_round_trip_into_a_fresh_instance(cls):
    batches = _batches()
    norm = cls()
    for b in batches[:3]:
        norm(b)
    buffer = io.BytesIO()
    torch.save(norm.state_dict(), buffer)
    buffer.seek(0)
    fresh = cls()
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    assert int(fresh.num_updates) == 3
    torch.testing.assert_close(fresh.normalize(batches[3]), norm.normalize(batches[3]))
    # and both continue identically
    torch.testing.assert_close(fresh(batches[4]), norm(batches[4]))
    for key, value in norm.state_dict().items():
        torch.testing.assert_close(fresh.state_dict()[key], value)
    # an un-updated state loads too, and leaves the instance without statistics
    trained = cls()
    trained(batches[0])
    trained.load_state_dict(cls().state_dict())
    assert trained.num_objectives is None and int(trained.num_updates) == 0


def test_tanh_and_identity():
    x = torch.tensor([[0.0, 2.0], [-2.0, 100.0]])
    torch.testing.assert_close(
        TanhNormalizer(scale=2.0)(x), torch.tensor([[0.0, 0.761594], [-0.761594, 1.0]])
    )
    assert torch.equal(IdentityNormalizer()(x), x)


@pytest.mark.parametrize("cls", [MaxNormalizer, ZScoreNormalizer])
def test_statistics_stay_float64_when_the_model_is_cast(cls):
    norm = cls()
    batches = _batches()
    norm(batches[0])
    before = {k: v.clone() for k, v in norm.state_dict().items()}
    norm.to(torch.bfloat16)
    for key, value in norm.state_dict().items():
        assert torch.equal(value, before[key]), key
    out = norm(batches[1].bfloat16())
    assert out.dtype == torch.bfloat16 and all(
        v.dtype in (torch.float64, torch.long) for v in norm.state_dict().values()
    )


def test_output_keeps_dtype():
    scaler = MaxNormalizer()
    out = scaler(torch.tensor([[2.0, 4.0]], dtype=torch.float64))
    assert out.dtype == torch.float64
    assert scaler(torch.tensor([[1.0, 1.0]], dtype=torch.bfloat16)).dtype == torch.bfloat16


# ---------------------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("cls", [MaxNormalizer, ZScoreNormalizer, TanhNormalizer, IdentityNormalizer])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_rewards_raise_naming_the_objective(cls, bad):
    norm = cls()
    x = torch.tensor([[0.0, 1.0, 2.0], [1.0, 2.0, bad]])
    with pytest.raises(ValueError, match=r"objective 2 contain 1 NaN/inf"):
        norm(x)
    with pytest.raises(ValueError, match=r"objective 2 \('safety'\) contain 1 NaN/inf.*first bad row 1"):
        norm(x, names=["a", "b", "safety"])
    with pytest.raises(ValueError, match=r"objective 2"):
        norm.normalize(x)
    assert int(norm.num_updates) == 0  # nothing was merged


def test_check_finite_names_the_first_bad_objective_only_once_found():
    check_finite_rewards(torch.zeros(2, 2))
    with pytest.raises(ValueError, match=r"^scores of objective 0 contain 2 NaN/inf"):
        check_finite_rewards(torch.tensor([[float("nan")], [float("nan")]]), where="scores")


def test_bad_reward_tensors():
    norm = MaxNormalizer()
    with pytest.raises(TypeError, match=r"MaxNormalizer expects a floating tensor of rewards \[N, K\]"):
        norm([[1.0, 2.0]])
    with pytest.raises(TypeError, match="floating tensor"):
        norm(torch.tensor([[1, 2]]))
    with pytest.raises(ValueError, match=r"shape \[N, K\] with N >= 1; got \(2,\)"):
        norm(torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"N >= 1; got \(0, 2\)"):
        norm(torch.zeros(0, 2))
    norm(torch.ones(1, 2))
    with pytest.raises(ValueError, match="statistics for K=2 objectives but got rewards with K=3"):
        norm(torch.ones(1, 3))


def test_bad_arguments():
    with pytest.raises(
        ValueError, match=r"`freeze_after` must be None or an integer >= 0 \(.*freeze_after\); got -1"
    ):
        MaxNormalizer(freeze_after=-1)
    with pytest.raises(ValueError, match="`freeze_after` must be None or an integer"):
        ZScoreNormalizer(freeze_after=True)
    for cls in (MaxNormalizer, ZScoreNormalizer):
        with pytest.raises(
            ValueError, match=r"`eps` must be > 0 \(model.init_args.reward.init_args.normalizer"
        ):
            cls(eps=0.0)
    with pytest.raises(ValueError, match=r"`scale` must be > 0 \(.*normalizer.init_args.scale\); got -1"):
        TanhNormalizer(scale=-1.0)
