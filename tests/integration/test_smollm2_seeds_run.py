"""``benchmarks/smollm2_seeds_run.sh`` with a stand-in ``python``: which runs it starts and where it keeps them."""

import json
import os
import stat
import subprocess

from smollm2_artifacts import REPO

SCRIPT = REPO / "benchmarks" / "smollm2_seeds_run.sh"

# Records each call, writes the stage's model folder or the run's summary.json and frontier.csv as the real scripts
# would.
FAKE_PYTHON = """#!/usr/bin/env bash
echo "$*" >> "$CALLS"
script=$1; shift
case "$script" in
  recipes/smollm2/preference_stage.py)
    while [ $# -gt 0 ]; do [ "$1" = --out ] && out=$2; shift; done
    mkdir -p "$out" && echo '{}' > "$out/config.json";;
  recipes/train.py)
    for a in "$@"; do case $a in --trainer.default_root_dir=*) root=${a#*=};; esac; done
    mkdir -p "$root/lightning_logs/version_0"
    echo '{"step": 96}' > "$root/lightning_logs/version_0/summary.json"
    echo 'w_1,w_2,seen,r_1,r_2,pu' > "$root/lightning_logs/version_0/frontier.csv";;
esac
"""


def _setup(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "python"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    results = tmp_path / "results"
    for kept in ("stage_s2", "meta_s2", "wgrpo_s2", "grid_s2"):  # every piece of seed 2 already done
        (results / kept).mkdir(parents=True)
        (results / kept / "summary.json").write_text(json.dumps({"step": 96}))
    return bin_dir, results


def _run(tmp_path, bin_dir, results, **env):
    calls = tmp_path / "calls.txt"
    calls.write_text("")
    full = os.environ | {"PATH": f"{bin_dir}:{os.environ['PATH']}", "CALLS": str(calls), "SEEDS": "2",
                         "RUNS": str(tmp_path / "runs"), "RESULTS": str(results)} | env  # fmt: skip
    done = subprocess.run(["bash", str(SCRIPT)], cwd=tmp_path, env=full, capture_output=True, text=True)
    return done, calls.read_text().splitlines()


def test_a_lever_rebuilds_the_stage_it_needs_even_when_the_seed_is_done(tmp_path):
    bin_dir, results = _setup(tmp_path)
    lever = {"PIECES": "stage grid", "VARIANT": "steps192", "ARGS": "--trainer.max_steps=192"}
    done, calls = _run(tmp_path, bin_dir, results, **lever)
    assert done.returncode == 0, done.stderr
    model = tmp_path / "runs" / "model_s2"
    assert calls[0] == f"recipes/smollm2/preference_stage.py --seed 2 --out {model}"
    assert calls[1].startswith("recipes/train.py fit --config recipes/smollm2/grid_grpo.yaml")
    assert f"--model.init_args.policy.init_args.model={model}" in calls[1]
    assert calls[1].endswith("--trainer.max_steps=192")
    assert len(calls) == 2
    assert (results / "grid-steps192_s2" / "summary.json").is_file()
    assert (results / "grid-steps192_s2" / "frontier.csv").read_text().startswith("w_1,w_2,seen")
    # Started again, nothing is left to do: no stage, no run.
    done, calls = _run(tmp_path, bin_dir, results, **lever)
    assert done.returncode == 0, done.stderr
    assert calls == []


def test_stage_args_keep_the_stage_and_its_evaluation_under_the_variant(tmp_path):
    bin_dir, results = _setup(tmp_path)
    done, calls = _run(tmp_path, bin_dir, results, PIECES="stage grid eval", VARIANT="stage2ep",
                       STAGE_ARGS="--epochs 2")  # fmt: skip
    assert done.returncode == 0, done.stderr
    model = tmp_path / "runs" / "model-stage2ep_s2"
    assert calls[0] == f"recipes/smollm2/preference_stage.py --seed 2 --out {model} --epochs 2"
    assert calls[1].startswith("recipes/train.py fit --config recipes/smollm2/grid_grpo.yaml")
    assert calls[2].startswith("recipes/train.py validate --config recipes/smollm2/weighted_meta.yaml")
    assert all(f"--model.init_args.policy.init_args.model={model}" in c for c in calls[1:])
    assert len(calls) == 3
    assert (results / "grid-stage2ep_s2" / "summary.json").is_file()
    assert (results / "stage-stage2ep_s2" / "summary.json").is_file()
    assert not (tmp_path / "runs" / "model_s2").exists()  # the one-epoch stage is not touched


def test_stage_args_without_a_variant_are_refused(tmp_path):
    bin_dir, results = _setup(tmp_path)
    done, calls = _run(tmp_path, bin_dir, results, PIECES="stage eval", STAGE_ARGS="--epochs 2")
    assert done.returncode != 0
    assert "STAGE_ARGS needs a VARIANT" in done.stderr
    assert calls == []
