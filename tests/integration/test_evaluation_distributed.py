"""ParetoEvaluation sums its per-weight metric states over ranks: two processes give the one-process sweep."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("_evaluation_dist_script.py")


def _run(devices: int, out: Path) -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH"), str(REPO)) if p)
    proc = subprocess.run([sys.executable, str(SCRIPT), str(devices), str(out)], env=env, capture_output=True,
                          text=True, timeout=300, cwd=out)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads((out / f"summary{devices}.json").read_text())


@pytest.mark.slow
def test_two_processes_give_the_one_process_sweep(tmp_path):
    one, two = _run(1, tmp_path), _run(2, tmp_path)
    # Greedy points do not depend on how the sweep is split (sampled ones use per-rank seeds, so not compared).
    assert [p for row in two["greedy"] for p in row] == pytest.approx(
        [p for row in one["greedy"] for p in row], abs=1e-9
    )
    assert two["pu"] == pytest.approx(one["pu"], abs=1e-9)
    keys = set(one["scalars"])  # every scalar, per-prompt steering included
    assert {"pu_regret", "hv_ratio", "prompt_steer_frac/helpfulness", "spearman_unseen/harmlessness"} <= keys
    for key in keys:
        assert two["scalars"][key] == pytest.approx(one["scalars"][key], abs=1e-9, nan_ok=True), key
    assert len(one["greedy"]) == 5 and one["scalars"]["hypervolume"] > 0.1  # completions that score
