"""MetaLoop(parallel_tasks=True): B groups of ranks adapt at once; with optimizer resets it is the sequential
algorithm, and a resume at a meta-iteration boundary is exact."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pareto_lightning.callbacks.parallel_tasks import task_group

REPO = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("_parallel_tasks_script.py")


def _run(mode: str, out: Path) -> None:
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH"), str(REPO)) if p)
    proc = subprocess.run([sys.executable, str(SCRIPT), mode, str(out)], env=env, capture_output=True, text=True,
                          timeout=240, cwd=out)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


@pytest.mark.slow
def test_parallel_tasks_equal_the_sequential_meta_parameters_and_resume_exactly(tmp_path):
    grads = torch.randn(3, 2, 2, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    torch.save(grads, tmp_path / "grads.pt")
    for mode in ("sequential", "parallel", "parallel_first_part", "parallel_resume"):
        _run(mode, tmp_path)
    sequential = torch.load(tmp_path / "sequential.pt", weights_only=True)[0]
    parallel = torch.load(tmp_path / "parallel.pt", weights_only=True)  # [2 ranks, 3]
    torch.testing.assert_close(
        parallel[0], parallel[1], rtol=0, atol=0
    )  # the ranks agree after each meta step
    torch.testing.assert_close(parallel[0], sequential, rtol=1e-12, atol=1e-12)
    assert not torch.allclose(sequential, torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64))  # it moved
    resumed = torch.load(tmp_path / "parallel_resume.pt", weights_only=True)
    torch.testing.assert_close(resumed, parallel, rtol=0, atol=0)


def test_task_groups_split_the_ranks():
    assert task_group(0, 2, 2) == (0, [[0], [1]])
    assert task_group(5, 6, 3) == (2, [[0, 1], [2, 3], [4, 5]])
    with pytest.raises(
        ValueError, match=r"number of processes \(3\) to be a multiple of .*tasks_per_meta_step`=2"
    ):
        task_group(0, 3, 2)
