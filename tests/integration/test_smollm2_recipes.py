"""``recipes/smollm2`` unchanged, with a tiny saved Llama where the fetch command puts SmolLM2-135M-Instruct.

``HOME`` points at a temporary folder holding the tiny model at ``~/.cache/pareto_lightning/smollm2-135m-instruct``
and, written from it by the preference stage's own script (``recipes/smollm2/preference_stage.py``, default cache
root), ``~/.cache/pareto_lightning/smollm2-135m-preference``,
so the recipes' own model path, prompt files, LoRA and scorers are what runs (no network, seconds).
"""

from __future__ import annotations

import contextlib
import csv
import glob
import io
import json
import os
import re
import sys
from unittest import mock

import pytest
import torch
import yaml
from smollm2_artifacts import REPO, build_tiny_smollm2, recipe_script

from pareto_lightning import (
    GRPOModule,
    MetaLoop,
    ParetoEvaluation,
    SmoothTchebycheff,
    SteeringBonus,
    WeightedSum,
)
from pareto_lightning.cli import main
from pareto_lightning.preferences import PAPER_EVAL_WEIGHTS, simplex_grid
from pareto_lightning.rewards import TextstatScore

RECIPES = sorted(glob.glob(str(REPO / "recipes" / "smollm2" / "*.yaml")))
EXPECTED = {  # scalarizer, MetaLoop
    "grid_grpo": (WeightedSum, False),
    "grid_grpo_cross": (WeightedSum, False),
    "weighted_grpo": (SmoothTchebycheff, False),
    "weighted_meta": (SmoothTchebycheff, True),
    "weighted_meta_steer": (SteeringBonus, True),
}
SMALL = [  # a short run: 2 prompts x 3 weights to evaluate, no logger
    "--trainer.logger=false", "--trainer.enable_progress_bar=false", "--data.init_args.num_eval_prompts=2",
    "--data.init_args.eval_weights=[[1,0],[0.5,0.5],[0,1]]",
]  # fmt: skip


STAGE = ["--samples", "1", "--weights-per-prompt", "1", "--epochs", "1", "--batch-size", "64",
         "--train-batch-size", "32", "--recipe", str(REPO / "recipes" / "smollm2" / "weighted_meta.yaml")]  # fmt: skip
"""The preference stage on the tiny model: one completion per prompt and instruction, one epoch."""


@pytest.fixture(scope="module")
def tiny_home(tmp_path_factory):
    """The tiny model where the fetch command writes, and the preference stage's model where the recipes look."""
    home = tmp_path_factory.mktemp("home")
    build_tiny_smollm2(home)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with mock.patch.dict(os.environ, {"HOME": str(home)}):
            # The default cache root, the recipes' path (patch.dict restores the variable).
            os.environ.pop("PARETO_LIGHTNING_CACHE", None)
            recipe_script("preference_stage").main(STAGE)
    finally:
        torch.set_num_threads(before)
    return home


@pytest.fixture
def in_repo(tiny_home, monkeypatch):
    """The recipes' relative prompt paths resolve from the repository root; ``~`` is the tiny model's home."""
    monkeypatch.setenv("HOME", str(tiny_home))
    monkeypatch.chdir(REPO)
    return tiny_home


@pytest.fixture
def one_thread():
    """A model this small gains nothing from several threads, and on a busy machine their syncing costs ~10x."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _argv():
    """Pytest's own arguments are not the command line's."""
    return mock.patch.object(sys, "argv", ["train.py"])


def _build(args):
    from pareto_lightning.algorithms import PreferenceAlignmentModule
    from pareto_lightning.cli import ParetoCLI
    from pareto_lightning.data import PreferencePromptDataModule

    with _argv():
        return ParetoCLI(PreferenceAlignmentModule, PreferencePromptDataModule, subclass_mode_model=True,
                         subclass_mode_data=True, run=False, args=args)  # fmt: skip


def test_the_three_recipes_are_there():
    assert {os.path.basename(p)[:-5] for p in RECIPES} == set(EXPECTED)


@pytest.mark.parametrize("path", RECIPES, ids=os.path.basename)
def test_each_recipe_opens_with_its_command(path):
    lines = open(path).read().splitlines()
    assert lines[1] == f"#   python recipes/train.py fit --config recipes/smollm2/{os.path.basename(path)}"
    assert any('pip install -e ".[smollm2]" && python recipes/smollm2/fetch.py' in line for line in lines[:5])


@pytest.mark.parametrize("path", RECIPES, ids=os.path.basename)
def test_each_recipe_builds_its_method_on_the_saved_model(path, in_repo):
    cli = _build(["--config", path, "--trainer.logger=false"])
    scalarizer, meta = EXPECTED[os.path.basename(path)[:-5]]
    model, data = cli.model, cli.datamodule
    assert type(model) is GRPOModule and type(model.scalarizer) is scalarizer
    assert any(isinstance(c, MetaLoop) for c in cli.trainer.callbacks) == meta
    assert any(isinstance(c, ParetoEvaluation) for c in cli.trainer.callbacks)
    policy = model.policy
    assert policy.uses_lora and type(policy.model.get_base_model()).__name__ == "LlamaForCausalLM"
    trainable = [n for n, p in policy.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert policy.objective_names == ["simplicity", "technicality"] == model.reward.names
    assert all(isinstance(f, TextstatScore) for f in model.reward._functions)
    assert model.reward.normalizer is None
    # Only the cross-weight recipe answers each prompt under several weights, and compares them.
    cross = os.path.basename(path) == "grid_grpo_cross.yaml"
    assert (model.cross_weight > 0, data.schedule.weights_per_prompt > 1) == (cross, cross)
    data.setup("fit")
    # The 28 weights of the paper's Table 1: the 11 of the training grid are seen, the 17 others unseen.
    assert len(data.eval_prompts) == 30 and torch.equal(data.eval_weights, PAPER_EVAL_WEIGHTS)
    assert (
        torch.equal(data.eval_weights[data.eval_seen], simplex_grid(2, 10))
        and int((~data.eval_seen).sum()) == 17
    )
    # Every evaluation prompt fits max_prompt_length under every weight with this tokenizer too.
    policy.check_prompt_lengths(data.eval_prompts, data.eval_weights, key="data.init_args.eval_prompts")


@pytest.mark.parametrize("path", RECIPES, ids=os.path.basename)
def test_the_recipe_trains_the_adapter_and_evaluates(path, in_repo, tmp_path, one_thread):
    """Two steps (eight for the meta recipe: one meta-iteration of 4 steps x 2 tasks), then an evaluation."""
    from safetensors.torch import load_file

    steps = 8 if EXPECTED[os.path.basename(path)[:-5]][1] else 2
    log_dir = tmp_path / "run"
    args = ["fit", "--config", path, f"--trainer.max_steps={steps}", f"--trainer.val_check_interval={steps}",
            f"--trainer.default_root_dir={log_dir}", "--data.init_args.batch_size=2",
            "--model.init_args.num_generations=2", "--model.init_args.policy.init_args.max_new_tokens=8",
            *SMALL[1:]]  # fmt: skip
    with _argv():
        cli = main(args)
    assert cli.trainer.global_step == steps
    policy = cli.model.policy.model
    lora_b = [p for n, p in policy.named_parameters() if "lora_B" in n]
    assert lora_b and any(bool(p.ne(0).any()) for p in lora_b)  # the adapter trained (LoRA B starts at zero)
    saved = load_file(
        in_repo / ".cache" / "pareto_lightning" / "smollm2-135m-preference" / "model.safetensors"
    )
    base = policy.get_base_model().state_dict()
    for name, weight in saved.items():  # the base did not
        assert torch.equal(base[name.replace("weight", "base_layer.weight")] if name not in base else base[name],
                           weight), name  # fmt: skip
    run = log_dir / "lightning_logs" / "version_0"
    rows = list(csv.DictReader(open(run / "frontier.csv")))
    assert [(r["w_1"], r["w_2"]) for r in rows] == [
        ("1.0000", "0.0000"),
        ("0.5000", "0.5000"),
        ("0.0000", "1.0000"),
    ]
    assert all(0.0 <= float(r[k]) <= 1.0 for r in rows for k in ("r_1", "r_2"))
    samples = [json.loads(line) for line in open(run / "samples.jsonl")]
    assert set(samples[0]["rewards"]) == {"simplicity", "technicality"}
    summary = json.loads((run / "summary.json").read_text())
    for name in ("prompt_steer_frac", "prompt_steer_median", "spearman_seen"):  # per objective
        assert {f"val/{name}/simplicity", f"val/{name}/technicality"} <= set(summary)
    # The checkpoint holds the adapter, not the frozen base; `validate` from it rebuilds the base from the
    # recipe's folder and evaluates the same policy (greedy: the same rows as the run's last evaluation).
    ckpt = run / "checkpoints" / "last.ckpt"
    policy_keys = [k for k in torch.load(ckpt, weights_only=False)["state_dict"] if k.startswith("policy.")]
    assert policy_keys and all("lora_" in k for k in policy_keys)
    again = tmp_path / "validate"
    with _argv():
        main(["validate", "--config", path, f"--ckpt_path={ckpt}", f"--trainer.default_root_dir={again}",
              "--model.init_args.policy.init_args.max_new_tokens=8", *SMALL[1:]])  # fmt: skip
    assert list(csv.DictReader(open(again / "lightning_logs" / "version_0" / "frontier.csv"))) == rows


def test_the_preference_stage_adapts_the_attention_of_the_base_and_keeps_the_rest(in_repo):
    from safetensors.torch import load_file

    cache = in_repo / ".cache" / "pareto_lightning"
    base = load_file(cache / "smollm2-135m-instruct" / "model.safetensors")
    staged = load_file(cache / "smollm2-135m-preference" / "model.safetensors")
    assert set(staged) == set(base)
    lora_targets = ("q_proj", "k_proj", "v_proj", "o_proj")  # the recipe's LoRA target modules
    changed = {name for name in base if not torch.equal(base[name], staged[name])}
    assert changed and all(any(t in name for t in lora_targets) for name in changed)
    report = json.loads((cache / "smollm2-135m-preference" / "preference_stage.json").read_text())
    assert len(report["losses"]) == 1 and report["losses"][0] > 0
    assert set(report["pool_mean_rewards"]) == {*report["instructions"][:-1], "None"}
    pool = json.loads(next((cache / "smollm2-135m-preference").glob("pool-*.json")).read_text())
    assert len(pool) == 310 * 3  # every training prompt under both instructions and none, one sample each


def test_a_missing_model_folder_names_the_fetch_command(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(tmp_path))  # no model there
    monkeypatch.chdir(REPO)
    with pytest.raises(SystemExit), _argv():
        main(["fit", "--config", RECIPES[0], f"--trainer.default_root_dir={tmp_path}"])
    err = capsys.readouterr().err
    assert "`model.init_args.policy.init_args.model`: the policy model folder" in err
    assert (
        "python recipes/smollm2/preference_stage.py --out ~/.cache/pareto_lightning/smollm2-135m-preference"
        in err
    )


def test_the_preference_stage_without_its_base_names_the_flag_and_the_fetch_command(tmp_path, monkeypatch):
    monkeypatch.setenv("PARETO_LIGHTNING_CACHE", str(tmp_path))  # no model there
    with pytest.raises(FileNotFoundError, match=r"`--base`: .*python recipes/smollm2/fetch.py --out"):
        recipe_script("preference_stage").main(STAGE)


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        ("   ", "`data.init_args.eval_prompts` has 1 empty prompts"),
        (
            "Explain " + "very " * 60 + "clearly.",
            "more than `model.init_args.policy.init_args.max_prompt_length`=64",
        ),
    ],
    ids=["empty", "too_long"],
)
def test_bad_eval_prompts_are_refused_before_training(prompt, message, in_repo, tmp_path, capsys):
    prompts = tmp_path / "eval.jsonl"
    prompts.write_text(json.dumps({"prompt": "Say hi."}) + "\n" + json.dumps({"prompt": prompt}) + "\n")
    with pytest.raises(SystemExit), _argv():
        main(["fit", "--config", RECIPES[0], f"--data.init_args.eval_prompts.init_args.data_files={prompts}",
              f"--trainer.default_root_dir={tmp_path}", *SMALL[1:]])  # fmt: skip
    assert message in capsys.readouterr().err
    assert not (tmp_path / "lightning_logs" / "version_0" / "checkpoints").exists()  # no step ran


FUNCTIONS = "model.init_args.reward.init_args.functions"


def _messages_of_every_scorer_error() -> list[str]:
    """Every configuration error of the scorers, each built as entry ``k`` of a ``functions`` list (its ``key``)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from pareto_lightning.rewards import LLMJudge, VaderSentiment

    vader, textstat, judge = (f"{FUNCTIONS}[{k}]" for k in range(3))
    attempts = [
        lambda: VaderSentiment("joy", key=vader),
        lambda: TextstatScore("no_such_formula", low=1, high=1, min_words=-1, key=textstat),
        lambda: LLMJudge("/no/judge", question=" ", template="{prompt}", yes=[], output="x", batch_size=0,
                         max_length=1, key=judge),
        lambda: LLMJudge("/no/judge", dtype="int8", key=judge),
        lambda: LLMJudge("/no/judge", key=judge),
        lambda: LLMJudge(LlamaForCausalLM(LlamaConfig(vocab_size=8, hidden_size=8, intermediate_size=8,
                                                      num_hidden_layers=1, num_attention_heads=1)), key=judge),
    ]  # fmt: skip
    messages = []
    for attempt in attempts:
        with pytest.raises((ValueError, OSError)) as info:
            attempt()
        messages.append(str(info.value))
    return messages


def test_the_scorer_error_keys_are_paths_a_user_types():
    """Every key the scorers' errors name exists in a resolved config that lists those scorers in that order."""
    functions = [
        {"class_path": "pareto_lightning.rewards.VaderSentiment"},
        {"class_path": "pareto_lightning.rewards.TextstatScore"},
        {"class_path": "pareto_lightning.rewards.LLMJudge", "init_args": {"name_or_path": "/some/judge"}},
    ]
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit), _argv():
        main(["fit", "--config", RECIPES[0], "--model.init_args.reward.init_args.names=[a, b, c]",
              "--model.init_args.policy.init_args.objective_names=[a, b, c]",
              f"--model.init_args.reward.init_args.functions={json.dumps(functions)}", "--print_config"])  # fmt: skip
    config = yaml.safe_load(out.getvalue())
    typable = {f"{FUNCTIONS}[{k}].init_args.{arg}"
               for k, f in enumerate(config["model"]["init_args"]["reward"]["init_args"]["functions"])
               for arg in f["init_args"]}  # fmt: skip
    quoted = {key for message in _messages_of_every_scorer_error()
              for key in re.findall(r"`(model\.init_args\.[^`]+)`", message)}  # fmt: skip
    assert len(quoted) >= 10, quoted
    assert quoted <= typable, quoted - typable


@pytest.mark.parametrize("index", [0, 1])
def test_the_command_line_names_the_scorer_at_fault_by_its_index(in_repo, capsys, index):
    """The recipe lists two TextstatScores; the one given a bad ``min_words`` is the one the error names."""
    functions = [{"class_path": "pareto_lightning.rewards.TextstatScore", "init_args": {"metric": metric}}
                 for metric in ("flesch_reading_ease", "gunning_fog")]  # fmt: skip
    functions[index]["init_args"]["min_words"] = -2
    with pytest.raises(SystemExit) as info, _argv():
        main(["fit", "--config", RECIPES[0], *SMALL, f"--{FUNCTIONS}={json.dumps(functions)}"])
    err = capsys.readouterr().err
    assert info.value.code == 2, err
    assert f"`{FUNCTIONS}[{index}].init_args.min_words` must be >= 0; got -2" in err, err
