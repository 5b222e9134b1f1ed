import lightning.pytorch as pl
import pytest
import torch
from transformers import GPT2Config, GPT2ForSequenceClassification

from pareto_lightning import (
    GRPOModule,
    HFRewardModel,
    ListPrompts,
    MOODPOModule,
    MultiObjectiveReward,
    PreferencePromptDataModule,
    SmoothTchebycheff,
    WeightedSum,
)
from pareto_lightning.tasks import LexiconLM, LexiconReward, LexiconTask, LexiconTokenizer

PROMPTS = ListPrompts(
    ["write a note about the river", "tell me about the city", "hi", "write about the sea"] * 3
)


@pytest.fixture(scope="module")
def reward_model_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("rm")
    tok = LexiconTokenizer()
    cfg = GPT2Config(vocab_size=len(tok), n_positions=128, n_embd=16, n_layer=1, n_head=2, num_labels=1,
                     pad_token_id=tok.pad_token_id)  # fmt: skip
    torch.manual_seed(0)
    GPT2ForSequenceClassification(cfg).save_pretrained(d)
    tok.save_pretrained(d)
    return str(d)


def _module(cls, reward_model_dir, lora=None, **kw):
    task = LexiconTask()
    policy = task.policy(max_new_tokens=5, lora=lora)
    reward = MultiObjectiveReward([LexiconReward(0), HFRewardModel(reward_model_dir, batch_size=4)],
                                  names=["helpfulness", "harmlessness"])  # fmt: skip
    return cls(policy, reward, kw.pop("scalarizer", SmoothTchebycheff()), learning_rate=1e-2, **kw)


def _fit_one_step(module):
    dm = PreferencePromptDataModule(PROMPTS, batch_size=2, num_eval_prompts=1)
    trainer = pl.Trainer(max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0)  # fmt: skip
    trainer.fit(module, dm)
    return trainer


def _snapshot(module):
    return {n: p.detach().clone() for n, p in module.named_parameters()}


@pytest.mark.parametrize(
    "cls,kw", [(GRPOModule, {"num_generations": 4, "beta": 0.1}), (MOODPOModule, {"beta": 0.1})]
)
def test_one_step_changes_every_trainable_parameter_and_nothing_else(cls, kw, reward_model_dir):
    torch.manual_seed(0)
    module = _module(cls, reward_model_dir, **kw)
    # Sampling at temperature 1 from a random model gives different utilities within groups.
    before = _snapshot(module)
    reward_before = {n: p.clone() for n, p in module.reward.named_parameters()}
    ref = None
    losses = []

    class Grab(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            losses.append(outputs["loss"].item())

    trainer = pl.Trainer(max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                         callbacks=[Grab()])  # fmt: skip
    dm = PreferencePromptDataModule(PROMPTS, batch_size=2, num_eval_prompts=1)
    trainer.fit(module, dm)
    ref = module.reference_model
    assert ref is not None
    trainable = {n for n, p in module.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("policy.model.") for n in trainable)
    after = dict(module.named_parameters())
    unchanged = [n for n in trainable if torch.equal(before[n], after[n])]
    assert not unchanged, f"parameters that did not move: {unchanged}"
    for n, p in module.reward.named_parameters():
        assert torch.equal(p, reward_before[n]) and not p.requires_grad
    ref_params = dict(ref.named_parameters())
    for n in ref_params:
        assert torch.equal(ref_params[n], before["policy.model." + n])
    assert losses and all(torch.isfinite(torch.tensor(losses)))
    assert not any(m.training for m in module.reward.reward_modules)  # reward models stay in eval mode
    assert "train/loss" in trainer.callback_metrics and "train/utility" in trainer.callback_metrics


def test_lora_step_trains_only_the_adapter(reward_model_dir):
    from peft import LoraConfig

    torch.manual_seed(0)
    lora = LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    module = _module(GRPOModule, reward_model_dir, lora=lora, num_generations=4, beta=0.1)
    before = _snapshot(module)
    _fit_one_step(module)
    assert module.reference_model is None
    for n, p in module.named_parameters():
        if n.startswith("policy.") and "lora_" in n:
            assert not torch.equal(p, before[n]), n
        else:
            assert torch.equal(p, before[n]), n


def test_scalarizer_is_pluggable(reward_model_dir):
    assert isinstance(_module(GRPOModule, reward_model_dir, scalarizer=WeightedSum()).scalarizer,
                      WeightedSum)  # fmt: skip


def test_checkpoint_stores_neither_the_reference_nor_frozen_reward_models(reward_model_dir, tmp_path):
    torch.manual_seed(0)
    module = _module(GRPOModule, reward_model_dir, num_generations=2, beta=0.1)
    trainer = _fit_one_step(module)
    trainer.save_checkpoint(tmp_path / "a.ckpt")
    ckpt = torch.load(tmp_path / "a.ckpt", weights_only=False)
    state = ckpt["state_dict"]
    assert any(k.startswith("policy.model.") for k in state)
    assert not any("_reference" in k or k.startswith("reward.reward_modules.") for k in state)
    fresh = _module(GRPOModule, reward_model_dir, num_generations=2, beta=0.1)
    fresh.load_state_dict(ckpt["state_dict"])  # strict: the reward weights come from the fresh module
    for n, p in module.policy.named_parameters():
        assert torch.equal(p, dict(fresh.policy.named_parameters())[n])


def test_configuration_errors_name_the_key(reward_model_dir):
    task = LexiconTask()
    reward = task.reward()
    with pytest.raises(ValueError) as err:
        GRPOModule(task.policy(), reward, SmoothTchebycheff(), num_generations=1, learning_rate=0)
    for key in ["num_generations", "learning_rate"]:
        assert f"model.init_args.{key}" in str(err.value)
    with pytest.raises(ValueError) as err:  # the loss's arguments, checked before the module's
        GRPOModule(task.policy(), reward, SmoothTchebycheff(), beta=-1.0, num_iterations=0)
    for key in ["beta", "num_iterations"]:
        assert f"model.init_args.{key}" in str(err.value)
    with pytest.raises(ValueError, match="epsilon"):
        GRPOModule(task.policy(), reward, SmoothTchebycheff(), epsilon=0)
    with pytest.raises(ValueError, match="beta"):
        MOODPOModule(task.policy(), reward, WeightedSum(), beta=0.0)
    with pytest.raises(ValueError, match="loss_type"):
        MOODPOModule(task.policy(), reward, WeightedSum(), loss_type="hinge")
    three = LexiconTask(num_objectives=3)
    with pytest.raises(ValueError, match=r"3.*2|2.*3"):
        GRPOModule(three.policy(), reward, SmoothTchebycheff())


def test_batch_errors(reward_model_dir):
    module = _module(GRPOModule, reward_model_dir, num_generations=2)
    with pytest.raises(ValueError, match=r"`weights` must have 2 entries"):
        module.training_step({"prompts": ["hi"], "weights": torch.tensor([[0.2, 0.3, 0.5]])}, 0)
    with pytest.raises(ValueError, match="empty"):
        module.training_step({"prompts": [], "weights": torch.zeros(0, 2)}, 0)


def test_reward_function_returning_nan_is_refused():
    task = LexiconTask()

    def broken(prompts, completions):
        return torch.full((len(completions),), float("nan"))

    module = GRPOModule(task.policy(max_new_tokens=3), MultiObjectiveReward([broken, LexiconReward(1)]),
                        SmoothTchebycheff(), num_generations=2)  # fmt: skip
    with pytest.raises(ValueError, match="NaN|nan|finite"):
        module.training_step({"prompts": ["hi"], "weights": torch.tensor([[0.5, 0.5]])}, 0)


def test_validation_step_is_reproducible():
    torch.manual_seed(0)
    task = LexiconTask()
    module = GRPOModule(task.policy(max_new_tokens=5), task.reward(), SmoothTchebycheff(), num_generations=2,
                        eval_num_generations=3)  # fmt: skip
    batch = {"prompts": ["hi", "write about the sea"], "weights": torch.tensor([[0.3, 0.7], [1.0, 0.0]]),
             "weight_index": torch.tensor([0, 1]), "prompt_index": torch.tensor([0, 1])}  # fmt: skip
    a = module.validation_step(batch, 0)
    torch.rand(5)  # the global RNG moving on must not matter
    b = module.validation_step(batch, 0)
    assert a.sampled.shape == (2, 3, 2) and a.greedy.shape == (2, 2)
    assert torch.equal(a.sampled, b.sampled) and a.completions == b.completions
    _ = LexiconLM  # the policy model class used by the task


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        (
            {"advantage_scale": "grup"},
            r"`model.init_args.advantage_scale` must be 'group', 'batch' or 'none'; got 'grup'",
        ),
        (
            {"aggregation": "mean"},
            r"`model.init_args.aggregation` must be 'sequence_mean' or 'token_mean'; got 'mean'",
        ),
    ],
)
def test_grpo_refuses_unknown_choices_when_built(kw, match):
    task = LexiconTask()
    with pytest.raises(ValueError, match=match):
        GRPOModule(task.policy(max_new_tokens=2), task.reward(), SmoothTchebycheff(), **kw)
