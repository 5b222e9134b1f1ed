"""The paper's Helpful/Harmless setup (``recipes/hh``) on tiny local stand-ins of its models and datasets.

The recipes name Hub artifacts; here they are pointed at folders written by :mod:`hh_artifacts` with command-line
overrides, so everything runs on CPU without network: the recipes parse and build, a missing model or dataset
fails early with one clear message, and two processes train, evaluate, checkpoint and resume under FSDP2.
"""

from __future__ import annotations

import csv
import glob
import inspect
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
import torch
from hh_artifacts import (
    HUB_BEAVERTAILS,
    HUB_HARMLESS_RM,
    HUB_HELPFUL_RM,
    HUB_POLICY,
    HUB_ULTRAFEEDBACK,
    build_hh_artifacts,
)
from lightning.pytorch.callbacks import ModelCheckpoint
from transformers import Qwen2ForCausalLM

from pareto_lightning import (
    PAPER_EVAL_WEIGHTS,
    GRPOModule,
    HFPrompts,
    HFRewardModel,
    MaxNormalizer,
    MetaLoop,
    MOODPOModule,
    ParetoEvaluation,
    SmoothTchebycheff,
    WeightedSum,
    simplex_grid,
    split_seen_unseen,
)
from pareto_lightning.checkpointing import leave_out_of_checkpoints
from pareto_lightning.cli import ParetoCLI, printed_config
from pareto_lightning.rewards import HH_TEMPLATE, ZScoreNormalizer

REPO = Path(__file__).resolve().parents[2]
RECIPES = sorted(glob.glob(str(REPO / "recipes" / "hh" / "*.yaml")))
SCRIPT = Path(__file__).with_name("_hh_fsdp_script.py")
CPU = [
    "--trainer.accelerator=cpu",
    "--trainer.devices=1",
    "--trainer.strategy=auto",
    "--trainer.logger=false",
]
EXPECTED = {  # module, scalarizer, MetaLoop
    "mo_odpo": (MOODPOModule, WeightedSum, False),
    "grid_grpo": (GRPOModule, WeightedSum, False),
    "grid_meta_grpo": (GRPOModule, WeightedSum, True),
    "weighted_grpo": (GRPOModule, SmoothTchebycheff, False),
    "weighted_meta": (GRPOModule, SmoothTchebycheff, True),
}
HUB_MESSAGE = "the Hugging Face Hub must be reachable, or give a local path"


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    return build_hh_artifacts(tmp_path_factory.mktemp("hh_artifacts"))


def _cli(args: list[str], run: bool = False) -> ParetoCLI:
    from pareto_lightning.algorithms import PreferenceAlignmentModule
    from pareto_lightning.data import PreferencePromptDataModule

    with mock.patch.object(sys, "argv", ["train.py"]):  # pytest's own arguments are not the CLI's
        return ParetoCLI(PreferenceAlignmentModule, PreferencePromptDataModule, subclass_mode_model=True,
                         subclass_mode_data=True, run=run, args=args)  # fmt: skip


def _callback(cli: ParetoCLI, cls: type):
    found = [c for c in cli.trainer.callbacks if isinstance(c, cls)]
    return found[0] if found else None


# ------------------------------------------------------------------------------------------------ the recipes
def test_the_five_methods_have_hh_recipes():
    assert {os.path.basename(p)[:-5] for p in RECIPES} == set(EXPECTED)


@pytest.mark.parametrize("path", RECIPES, ids=os.path.basename)
def test_hh_recipe_names_the_paper_setup(path):
    with open(path) as fh:
        text = fh.read()
    lines = text.splitlines()
    assert lines[1].strip() == f"#   python recipes/train.py fit --config recipes/hh/{os.path.basename(path)}"
    assert "4 CUDA GPUs" in lines[2]
    config = printed_config(["fit", "--config", path])  # the recipe with its base
    trainer, model, data = config["trainer"], config["model"]["init_args"], config["data"]["init_args"]
    strategy = trainer["strategy"]
    assert strategy["class_path"] == "lightning.pytorch.strategies.ModelParallelStrategy"
    assert (strategy["init_args"]["data_parallel_size"], strategy["init_args"]["tensor_parallel_size"]) == (4, 1)
    assert (trainer["accelerator"], trainer["devices"], trainer["num_nodes"]) == ("gpu", 4, 1)
    assert trainer["precision"] == "bf16-mixed"
    assert model["policy"]["init_args"]["model"] == model["policy"]["init_args"]["tokenizer"] == HUB_POLICY
    functions = model["reward"]["init_args"]["functions"]
    assert [f["init_args"]["name_or_path"] for f in functions] == [HUB_HELPFUL_RM, HUB_HARMLESS_RM]
    default_template = inspect.signature(HFRewardModel).parameters["template"].default  # Human/Assistant
    assert all(f["init_args"]["template"] == default_template for f in functions)
    train, evals = data["train_prompts"]["init_args"], data["eval_prompts"]["init_args"]
    assert (train["path"], train["split"], train["prompt_column"]) == (
        HUB_ULTRAFEEDBACK,
        "train_prefs",
        "prompt",
    )
    assert (evals["path"], evals["split"], evals["prompt_column"]) == (HUB_BEAVERTAILS, "30k_test", "prompt")
    assert evals["key"] == "data.init_args.eval_prompts"


@pytest.mark.parametrize("path", RECIPES, ids=os.path.basename)
def test_hh_recipe_instantiates_on_local_artifacts(path, artifacts):
    cli = _cli(["--config", path, *artifacts.overrides(path), *CPU])
    module_cls, scalarizer_cls, meta = EXPECTED[os.path.basename(path)[:-5]]
    module, dm = cli.model, cli.datamodule
    assert type(module) is module_cls and type(module.scalarizer) is scalarizer_cls
    assert module.learning_rate == 1e-6 and module.beta == 0.1
    if scalarizer_cls is SmoothTchebycheff:
        assert module.scalarizer.mu == 0.1
    policy = module.policy
    assert isinstance(policy.model, Qwen2ForCausalLM) and policy.model.dtype == torch.float32
    assert policy.temperature == 0.9 and policy.objective_names == ["helpfulness", "harmlessness"]
    assert "<|im_start|>system" in policy.conditioned_prompts(["hi"], torch.tensor([[0.3, 0.7]]))[0]
    rewards = module.reward._functions
    assert [type(r) for r in rewards] == [HFRewardModel, HFRewardModel]
    assert [r.name_or_path for r in rewards] == [str(artifacts.helpful_rm), str(artifacts.harmless_rm)]
    assert [r.objective for r in rewards] == ["helpfulness", "harmlessness"]  # each checked against its slot
    assert all(r.template == HH_TEMPLATE for r in rewards)
    assert module.reward.names == ["helpfulness", "harmlessness"]
    assert isinstance(module.reward.normalizer, MaxNormalizer)

    assert dm.batch_size == 2 and dm.sampler.alpha.tolist() == [1.0, 1.0]
    assert torch.equal(dm.train_support, simplex_grid(2, 10)) and len(dm.train_support) == 11
    assert torch.equal(dm.eval_weights, PAPER_EVAL_WEIGHTS)
    assert isinstance(dm.train_source, HFPrompts) and isinstance(dm.eval_source, HFPrompts)
    dm.trainer = cli.trainer  # as `fit` attaches it: a meta recipe's data module takes MetaLoop.inner_steps
    dm.setup("fit")  # reads the local UltraFeedback / BeaverTails folders by split
    assert len(dm.train_prompts) == 64 and len(dm.eval_prompts) == 8

    loop = _callback(cli, MetaLoop)
    assert (loop is not None) == meta
    if meta:
        assert (loop.tasks_per_meta_step, loop.meta_lr, loop.meta_lr_schedule) == (2, 1.5, "linear")
        assert loop.total_meta_steps == 400 and dm.steps_per_preference is None  # the MetaLoop sets it in fit
        assert cli.trainer.max_steps == 400 * loop.inner_steps * 2
    else:
        assert dm.per_prompt_preferences and dm.steps_per_preference in (None, 1)  # one step per preference
        assert cli.trainer.max_steps == 3200  # as many optimizer steps as the meta recipes
    evaluation = _callback(cli, ParetoEvaluation)
    assert (
        evaluation.task is None
        and float(evaluation.ref_point) == -1.2
        and float(evaluation.ideal_point) == 1.0
    )
    assert _callback(cli, ModelCheckpoint).monitor == "val/pu"


# ----------------------------------------------------------------------------------- missing models and data
WEIGHTED_META = str(REPO / "recipes" / "hh" / "weighted_meta.yaml")


def test_hub_unreachable_fails_before_anything_runs(artifacts):
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache(HUB_POLICY, "config.json"), str):
        pytest.skip(f"{HUB_POLICY} is in the local Hugging Face cache")
    # No overrides, offline: the datasets are checked first (in seconds, before any model loads)...
    with pytest.raises(
        OSError, match=rf"'{HUB_ULTRAFEEDBACK}' .*\(`data.init_args.train_prompts`\): {HUB_MESSAGE}"
    ):
        _cli(["--config", WEIGHTED_META, *CPU])
    # ...then, with local datasets, the policy.
    local_data = [a for a in artifacts.overrides(WEIGHTED_META) if a.startswith("--data.")]
    with pytest.raises(
        (OSError, ValueError),
        match=rf"'{HUB_POLICY}' \(model\.init_args\.policy\.init_args\.model\): {HUB_MESSAGE}",
    ):
        _cli(["--config", WEIGHTED_META, *local_data, *CPU])


def test_missing_policy_folder_names_the_key(tmp_path, artifacts):
    missing = tmp_path / "no_such_model"
    args = [*artifacts.overrides(WEIGHTED_META), f"--model.init_args.policy.init_args.model={missing}"]
    with pytest.raises(
        (OSError, ValueError), match=r"policy\.init_args\.model`: the policy model folder .* does not"
    ):
        _cli(["--config", WEIGHTED_META, *args, *CPU])


def test_missing_reward_model_names_the_key(tmp_path, artifacts):
    functions = [{"class_path": "pareto_lightning.HFRewardModel", "init_args": {"name_or_path": str(p)}}
                 for p in (artifacts.helpful_rm, tmp_path / "no_such_reward_model")]  # fmt: skip
    args = [
        *artifacts.overrides(WEIGHTED_META),
        f"--model.init_args.reward.init_args.functions={json.dumps(functions)}",
    ]
    with pytest.raises((OSError, ValueError), match=r"functions\[1\]\.init_args\.name_or_path`: the reward model "
                       r"folder '.*no_such_reward_model' does not exist"):  # fmt: skip
        _cli(["--config", WEIGHTED_META, *args, *CPU])


TRAIN_KEY, EVAL_KEY = "(`data.init_args.train_prompts`)", "(`data.init_args.eval_prompts`)"
DATA_CASES = {
    "missing-folder": ("train_prompts.init_args.path=/no/such/dataset",
                       f"'/no/such/dataset' split 'train_prefs' {TRAIN_KEY}", "FileNotFoundError"),
    "hub-offline": (f"train_prompts.init_args.path={HUB_ULTRAFEEDBACK}",
                    f"'{HUB_ULTRAFEEDBACK}' split 'train_prefs' {TRAIN_KEY}", "ConnectionError"),
    "missing-eval-folder": ("eval_prompts.init_args.path=/no/such/dataset",
                            f"'/no/such/dataset' split '30k_test' {EVAL_KEY}", "FileNotFoundError"),
    "no-plain-train-split": ("train_prompts.init_args.split=train", f"split 'train' {TRAIN_KEY}",
                             "Unknown split \"train\". Should be one of ['test_prefs', 'train_prefs']"),
}  # fmt: skip


@pytest.mark.parametrize(("override", "source", "cause"), DATA_CASES.values(), ids=DATA_CASES.keys())
def test_missing_dataset_fails_at_setup_before_training(override, source, cause, artifacts):
    args = ["fit", "--config", WEIGHTED_META, *artifacts.overrides(WEIGHTED_META), *CPU,
            f"--data.init_args.{override}", "--trainer.enable_progress_bar=false"]  # fmt: skip
    with pytest.raises(OSError, match=rf"{re.escape(source)}: {HUB_MESSAGE}.*{re.escape(cause)}"):
        _cli(args, run=True)  # raised by the data module's setup, before the first step


@pytest.mark.parametrize("field", ["train_prompts", "eval_prompts"])
def test_missing_dataset_fails_before_any_model_loads(field, tmp_path, artifacts):
    # The policy is missing too: the dataset's error comes first, so no model was loaded before it.
    args = ["--config", WEIGHTED_META, *artifacts.overrides(WEIGHTED_META), *CPU,
            f"--data.init_args.{field}.init_args.path={tmp_path / 'no_such_dataset'}",
            f"--model.init_args.policy.init_args.model={tmp_path / 'no_such_policy'}"]  # fmt: skip
    with mock.patch("transformers.AutoModelForCausalLM.from_pretrained") as load_model:
        with pytest.raises(OSError, match=rf"no_such_dataset.*\(`data.init_args.{field}`\): {HUB_MESSAGE}"):
            _cli(args)
    load_model.assert_not_called()


# ------------------------------------------------------------------------------ two processes under FSDP2
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_two_ranks(mode: str, artifacts, out: Path) -> None:
    """Both ranks at once, each a "node" (``NODE_RANK``), the way torchrun or SLURM start them."""
    keep = {k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "RANK", "NODE_RANK", "WORLD_SIZE")}
    env = dict(keep, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()), WORLD_SIZE="2", LOCAL_RANK="0",
               HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", HH_DUMP_AFTER="180",
               PYTHONPATH=os.pathsep.join(p for p in (keep.get("PYTHONPATH"), str(REPO)) if p))  # fmt: skip
    cmd = [sys.executable, str(SCRIPT), mode, str(artifacts.root), str(out)]
    procs = [subprocess.Popen(cmd, env=dict(env, NODE_RANK=str(r)), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, cwd=out) for r in (0, 1)]  # fmt: skip
    logs = []
    try:
        logs = [p.communicate(timeout=240)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert all(p.returncode == 0 for p in procs), "\n".join(log[-4000:] for log in logs)


def _check_front(log_dir: Path) -> None:
    with open(log_dir / "frontier.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 28 and list(rows[0]) == ["w_1", "w_2", "seen", "r_1", "r_2", "pu"]
    weights = torch.tensor([[float(r["w_1"]), float(r["w_2"])] for r in rows], dtype=torch.float64)
    torch.testing.assert_close(weights, PAPER_EVAL_WEIGHTS, rtol=0, atol=1e-4)
    seen = split_seen_unseen(PAPER_EVAL_WEIGHTS, simplex_grid(2, 10))
    assert [r["seen"] == "1" for r in rows] == seen.tolist()
    assert all(-1.0 <= float(r["r_1"]) <= 1.0 and -1.0 <= float(r["r_2"]) <= 1.0 for r in rows)  # max-scaled
    summary = json.loads((log_dir / "summary.json").read_text())
    assert summary["step"] == 8 and {"val/pu", "val/hypervolume", "val_sampled/pu"} <= set(summary)
    # 28 weights x 2 prompts, split over 2 ranks; samples.jsonl holds rank 0's share (or all, once gathered).
    assert len((log_dir / "samples.jsonl").read_text().splitlines()) in (28, 28 * 2)


def _assert_same(saved, resumed, where: str) -> None:
    if isinstance(saved, dict):
        assert set(saved) == set(resumed), where
        for key in saved:
            _assert_same(saved[key], resumed[key], f"{where}.{key}")
    elif isinstance(saved, torch.Tensor):
        assert torch.equal(saved, resumed), where
    else:
        assert saved == resumed, where


@pytest.mark.slow
def test_fsdp2_two_processes_train_evaluate_checkpoint_and_resume(artifacts, tmp_path):
    from torch.distributed.checkpoint import FileSystemReader

    _run_two_ranks("train", artifacts, tmp_path)
    info = json.loads((tmp_path / "train_info.json").read_text())
    assert (info["strategy"], info["world_size"], info["precision"]) == (
        "ModelParallelStrategy",
        2,
        "bf16-mixed",
    )
    assert info["global_step"] == 8 and info["validations"] == 1 and info["activation_checkpointing"]
    # bf16-mixed under FSDP2: float32 master shards, gathered as bf16 for compute and generation.
    assert info["sharded_dtypes"] == ["torch.float32"] and info["gathered_dtypes"] == ["torch.bfloat16"]
    # The policy is sharded (each rank holds half of every tensor's rows); the reward models are whole.
    embed = info["layout"]["policy.model.model.embed_tokens.weight"]
    assert embed == ["DTensor", [400, 32], [200, 32]]
    policy = {n: v for n, v in info["layout"].items() if n.startswith("policy.")}
    assert policy and all(v[0] == "DTensor" and v[2][0] == (v[1][0] + 1) // 2 for v in policy.values())
    rewards = {n: v for n, v in info["layout"].items() if n.startswith("reward.reward_modules.")}
    assert rewards and all(v[0] == "Parameter" and v[1] == v[2] for v in rewards.values())
    _check_front(Path(info["log_dir"]))
    assert (Path(info["log_dir"]) / "checkpoints" / "epoch=0-step=8.ckpt" / ".metadata").is_file()

    # A distributed checkpoint: one shard file per rank, the policy and optimizer state in it, the reward
    # models not (they are rebuilt from their own files), the rest (MetaLoop, data module) in meta.pt.
    ckpt = tmp_path / "step4.ckpt"
    assert {p.name for p in ckpt.iterdir()} == {"__0_0.distcp", "__1_0.distcp", ".metadata", "meta.pt"}
    keys = set(FileSystemReader(str(ckpt)).read_metadata().state_dict_metadata)
    assert "state_dict.policy.model.model.embed_tokens.weight" in keys
    assert "state_dict.reward.normalizer.max_abs" in keys and any(k.startswith("optimizer_0.") for k in keys)
    assert not any("reward_modules" in k for k in keys)

    _run_two_ranks("resume", artifacts, tmp_path)
    saved = torch.load(tmp_path / "saved.pt", weights_only=True)
    resumed = torch.load(tmp_path / "resumed.pt", weights_only=True)
    # Saved after the first task of the meta-iteration: its anchor and the task's delta are part of the state.
    assert saved["global_step"] == 4 and saved["adam_steps"] == [4.0]
    assert (saved["meta"]["iteration"], saved["meta"]["tasks_done"]) == (0, 1)
    anchor = saved["meta"]["anchor"]
    assert anchor["policy.model.model.embed_tokens.weight"].shape == (400, 32)  # gathered whole for the file
    assert saved["meta"]["delta_sum"] is not None and saved["max_abs"].shape == (2,)
    assert set(saved["exp_avg"]) == set(saved["params"])
    _assert_same(saved, resumed, "state")
    info = json.loads((tmp_path / "resume_info.json").read_text())
    assert info["global_step"] == 8 and info["validations"] == 1
    _check_front(Path(info["log_dir"]))


# ---------------------------------------------------------- checkpoint plumbing (checkpointing.py, normalizers)
def _root(normalizer) -> torch.nn.Module:
    root = torch.nn.Module()
    root.frozen, root.policy, root.norm = torch.nn.Linear(2, 2), torch.nn.Linear(2, 1), normalizer
    leave_out_of_checkpoints(root, "frozen.")
    normalizer.size_statistics(2)
    return root


def test_checkpoint_hooks_restore_updated_statistics_and_keep_refusing_real_gaps():
    saved = _root(ZScoreNormalizer())
    saved.norm(torch.tensor([[1.0, 10.0], [3.0, 10.0]]))  # mean [2, 10], var [1, 0]
    state = saved.state_dict()
    assert sorted(state) == [
        "norm.count",
        "norm.m2",
        "norm.mean",
        "norm.num_updates",
        "policy.bias",
        "policy.weight",
    ]
    fresh = _root(ZScoreNormalizer())
    blank = fresh.state_dict()  # what a distributed checkpoint reads into: [K] statistics, no frozen keys
    assert blank["norm.mean"].tolist() == [0.0, 0.0] and "frozen.weight" not in blank
    fresh.load_state_dict(state, strict=True)
    assert fresh.norm.mean.tolist() == [2.0, 10.0] and fresh.norm.var.tolist() == [1.0, 0.0]
    assert int(fresh.norm.num_updates) == 1
    # Merged with the restored statistics: rewards 1, 3, 4 give mean 8/3 and variance 14/9, so
    # (4 - 8/3) / sqrt(14/9) = 1.0690; the constant objective stays at 0.
    expected = torch.tensor([[(4 - 8 / 3) / (14 / 9) ** 0.5, 0.0]])
    torch.testing.assert_close(fresh.norm(torch.tensor([[4.0, 10.0]])), expected)
    del state["policy.weight"]
    with pytest.raises(RuntimeError, match=r'Missing key\(s\) in state_dict: "policy.weight"'):
        _root(ZScoreNormalizer()).load_state_dict(state, strict=True)


def test_statistics_saved_before_any_update_still_pass_rewards_through_after_loading():
    saved = _root(ZScoreNormalizer())
    fresh = _root(ZScoreNormalizer())
    fresh.load_state_dict(saved.state_dict(), strict=True)
    assert int(fresh.norm.num_updates) == 0 and fresh.norm.num_objectives == 2
    rewards = torch.tensor([[5.0, -3.0]])
    assert torch.equal(fresh.norm.normalize(rewards), rewards)  # no statistics: unchanged, not divided by ~0
