"""The KL reference belongs to the algorithm module: a frozen copy of the starting weights, or LoRA's base."""

import pytest
import torch
from peft import LoraConfig

from pareto_lightning import GRPOModule, PreferencePolicy, SmoothTchebycheff
from pareto_lightning.tasks import LexiconLM, LexiconTask, LexiconTokenizer


def _module(policy, beta=0.1, cls=GRPOModule):
    kw = {"num_generations": 2} if cls is GRPOModule else {}
    return cls(policy, LexiconTask().reward(), SmoothTchebycheff(), beta=beta, **kw)


def test_reference_is_a_frozen_copy_left_out_of_checkpoints():
    module = _module(PreferencePolicy(LexiconLM(seed=3), LexiconTokenizer(), max_new_tokens=4))
    assert module.reference_model is None
    module.setup("fit")
    ref = module.reference_model
    assert ref is not None and not any(p.requires_grad for p in ref.parameters())
    ids = {id(p) for p in module.policy.parameters()}
    assert not any(id(p) in ids for p in ref.parameters())
    assert not any(k.startswith("reference_model") for k in module.state_dict())
    torch.manual_seed(3)
    r = module.policy.generate(["hi"], torch.tensor([[0.5, 0.5]]), 2)
    assert torch.allclose(module.reference_log_probs(r), module.policy.log_probs(r).detach())
    with torch.no_grad():
        next(module.policy.parameters()).add_(1.0)  # training moves the policy, not the reference
    assert not torch.allclose(module.reference_log_probs(r), module.policy.log_probs(r).detach())
    module.to(torch.float64)
    assert next(ref.parameters()).dtype == torch.float64  # follows the module
    module.setup("fit")
    assert module.reference_model is ref  # made once


@pytest.mark.parametrize("beta", [0.0])
def test_no_reference_without_kl(beta):
    module = _module(PreferencePolicy(LexiconLM(seed=3), LexiconTokenizer(), max_new_tokens=4), beta=beta)
    module.setup("fit")
    assert module.reference_model is None
    r = module.policy.generate(["hi"], torch.tensor([[0.5, 0.5]]), 2)
    with pytest.raises(RuntimeError, match=r"made when fitting starts with `model.init_args.beta` > 0"):
        module.reference_log_probs(r)


def test_lora_reference_is_the_base_with_the_adapter_disabled():
    base = LexiconLM(seed=3)
    n_base = sum(p.numel() for p in base.parameters())
    policy = PreferencePolicy(
        base, LexiconTokenizer(), max_new_tokens=4,
        lora=LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False),
    )  # fmt: skip
    trainable = [n for n, p in policy.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    module = _module(policy)
    module.setup("fit")
    assert module.reference_model is None  # no second copy: the adapter is disabled instead
    n_total = sum(p.numel() for p in policy.parameters())
    n_lora = sum(p.numel() for n, p in policy.named_parameters() if "lora_" in n)
    assert n_total == n_base + n_lora
    torch.manual_seed(0)
    r = policy.generate(["hi"], torch.tensor([[0.5, 0.5]]), 2)
    plain = PreferencePolicy(LexiconLM(seed=3), LexiconTokenizer(), max_new_tokens=4)
    assert torch.allclose(module.reference_log_probs(r), plain.log_probs(r).detach(), atol=1e-5)
    assert not torch.allclose(policy.log_probs(r), plain.log_probs(r), atol=1e-4)  # the adapter is active


def _lora_module(seed_adapter: int):
    torch.manual_seed(seed_adapter)  # the adapter's random start (init_lora_weights=False: B is not zero)
    policy = PreferencePolicy(
        LexiconLM(seed=3), LexiconTokenizer(), max_new_tokens=4,
        lora=LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False),
    )  # fmt: skip
    return _module(policy)


def test_a_lora_checkpoint_holds_the_adapter_and_the_base_comes_from_its_source():
    module = _lora_module(0)
    state = module.state_dict()
    policy_keys = sorted(k for k in state if k.startswith("policy."))
    trainable = sorted(f"policy.{n}" for n, p in module.policy.named_parameters() if p.requires_grad)
    assert policy_keys == trainable and all("lora_" in k for k in policy_keys)  # tied lm_head left out too
    full = sum(t.numel() for t in module.policy.model.state_dict().values())
    assert sum(state[k].numel() for k in policy_keys) < full / 20
    # A module built again (its base from the same source, another adapter) loads it strictly.
    other = _lora_module(1)
    assert not all(torch.equal(state[k], other.state_dict()[k]) for k in policy_keys)
    other.load_state_dict(state, strict=True)
    expected = module.policy.model.state_dict()
    for name, tensor in other.policy.model.state_dict().items():
        assert torch.equal(tensor, expected[name]), name
    # A checkpoint written before the base was left out (every entry present) still loads.
    everything = {**state, **{f"policy.model.{k}": v for k, v in module.policy.model.state_dict().items()}}
    _lora_module(2).load_state_dict(everything, strict=True)
