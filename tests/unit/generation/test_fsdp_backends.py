"""Under FSDP2 (two gloo processes) every backend gathers the weights once per rollout, as the default does,
and follows an optimizer step and an in-place interpolation of the shards; continuous batching is refused."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
NAMES = ["hf", "hf_per_token", "static", "static_compiled", "continuous"]


@pytest.fixture(scope="module")
def records():
    env = {**os.environ, "PYTHONPATH": str(HERE.parents[2]), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, str(HERE / "_fsdp_backends_script.py"), ",".join(NAMES)], env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    found = [json.loads(m) for m in re.findall(r"\{\"rank\".*?\}(?=\s*\{|\s*$)", done.stdout, re.M)]
    assert len(found) == 2 * len(NAMES), done.stdout[-3000:] + done.stderr[-3000:]
    return {(r["name"], r["rank"]): r for r in found}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["hf", "static", "static_compiled"])
@pytest.mark.parametrize("rank", [0, 1])
def test_one_gather_per_rollout_and_fresh_weights(records, name, rank):
    record = records[(name, rank)]
    assert "error" not in record, record
    assert record["gathers"] == record["units"] == 3  # each FSDP unit (2 layers + root) gathered once
    assert record["equal_before"] and record["equal_after_step"] and record["equal_after_lerp"]
    assert record["changed_by_step"] and record["changed_by_lerp"]


@pytest.mark.slow
def test_the_gather_counter_sees_per_token_gathers(records):
    # Without unshard_for_generation every forward (1 prefill + 9 decode steps) gathers every unit.
    assert records[("hf_per_token", 0)]["gathers"] == 3 * 10


@pytest.mark.slow
@pytest.mark.parametrize("rank", [0, 1])
def test_continuous_batching_refuses_a_sharded_policy(records, rank):
    error = records[("continuous", rank)]["error"]
    assert error.startswith("ValueError: `model.init_args.policy.init_args.generation`: ContinuousBatchingGeneration "
                            "cannot generate with an FSDP2-sharded model")  # fmt: skip
