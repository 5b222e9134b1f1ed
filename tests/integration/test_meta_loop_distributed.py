"""MetaLoop under DDP and FSDP2 (``ModelParallelStrategy`` + ``fully_shard``), 2 CPU processes with gloo.

Each test runs ``_meta_loop_dist_script.py`` in a subprocess (Lightning's launcher re-runs ``sys.argv``, which
would break a pytest session) and checks what the ranks saved.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).with_name("_meta_loop_dist_script.py")
REPO = Path(__file__).resolve().parents[2]
INNER, TASKS, ITERATIONS, LR = 2, 2, 3, 0.1  # as in the script
EPS = [1.5 * (1 - t / ITERATIONS) for t in range(ITERATIONS)]  # linear schedule, meta_lr 1.5, T = 3


def _run(mode: str, out: Path) -> None:
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH"), str(REPO)) if p)
    cmd = [sys.executable, str(SCRIPT), mode, str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180, cwd=out)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


@pytest.mark.slow
def test_ddp_ranks_agree_and_follow_reptile_on_averaged_gradients(tmp_path):
    grads = torch.randn(INNER * TASKS * ITERATIONS, 2, 7, generator=torch.Generator().manual_seed(3),
                        dtype=torch.float64)  # fmt: skip
    torch.save(grads, tmp_path / "grads.pt")
    _run("ddp", tmp_path)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    assert all(torch.equal(ranks[0][n], ranks[1][n]) for n in ranks[0])

    # Plain Reptile with SGD on one flat vector [a (3), b (2x2)]; DDP averages the two ranks' gradients.
    theta = [0.5, -1.0, 2.0, 1.0, 0.0, -0.5, 0.25]
    step_grads = grads.mean(1).tolist()  # [steps, 7]
    k = 0
    for eps in EPS:
        anchor, delta_sum = list(theta), [0.0] * 7
        for _ in range(TASKS):
            phi = list(anchor)
            for _ in range(INNER):
                phi = [x - LR * g for x, g in zip(phi, step_grads[k], strict=True)]
                k += 1
            delta_sum = [d + p - a for d, p, a in zip(delta_sum, phi, anchor, strict=True)]
        theta = [a + eps * d / TASKS for a, d in zip(anchor, delta_sum, strict=True)]
    got = torch.cat([ranks[0]["a"], ranks[0]["b"].flatten()])
    torch.testing.assert_close(got, torch.tensor(theta, dtype=torch.float64), rtol=0, atol=1e-10)


@pytest.mark.slow
def test_fsdp2_meta_step_on_local_shards_matches_gathered_reptile_and_resumes(tmp_path):
    steps = INNER * TASKS * ITERATIONS  # (step, rank, row, x/y, feature)
    data = torch.randn(steps, 2, 2, 2, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    torch.save(data, tmp_path / "data.pt")
    _run("fsdp", tmp_path)
    r = torch.load(tmp_path / "fsdp.pt", weights_only=True)

    # The parameters and the callback's anchor are DTensors holding half of each tensor on each rank.
    assert r["layout"] == {
        "net.0.weight": ("DTensor", (2, 4), "DTensor", (2, 4)),
        "net.0.bias": ("DTensor", (2,), "DTensor", (2,)),
        "net.2.weight": ("DTensor", (2, 4), "DTensor", (2, 4)),
        "net.2.bias": ("DTensor", (2,), "DTensor", (2,)),
    }
    starts, adapted = r["starts"], r["adapted"]  # gathered, per task
    assert len(starts) == len(adapted) == TASKS * ITERATIONS
    anchors = starts[::TASKS] + [r["final"]]
    for t, eps in enumerate(EPS):
        anchor, tasks = anchors[t], adapted[t * TASKS : (t + 1) * TASKS]
        for j in range(1, TASKS):  # every task of a meta-iteration starts from the restored anchor
            assert all(torch.equal(starts[t * TASKS + j][n], anchor[n]) for n in anchor)
        assert not all(
            torch.equal(tasks[0][n], anchor[n]) for n in anchor
        )  # the inner steps moved the weights
        step_sq = 0.0
        for n in anchor:
            step = eps * sum(theta_j[n] - anchor[n] for theta_j in tasks) / TASKS
            torch.testing.assert_close(anchors[t + 1][n], anchor[n] + step, rtol=0, atol=1e-12)
            step_sq += float((step**2).sum())
        logged = r["logged"][t]
        assert logged["meta/lr"] == pytest.approx(eps) and logged["meta/iteration"] == t + 1
        assert logged["meta/step_norm"] == pytest.approx(
            step_sq**0.5, rel=1e-6
        )  # float32 log of a float64 norm

    # The run that crashed after a sharded checkpoint inside meta-iteration 0 and resumed ends identically.
    assert all(torch.equal(r["resumed_final"][n], r["final"][n]) for n in r["final"])
