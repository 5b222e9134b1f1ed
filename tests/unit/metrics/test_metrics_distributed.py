"""Both metric classes give the single-process result when two gloo processes each see part of the data."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import pareto_lightning
from pareto_lightning.metrics import Hypervolume, PreferenceUtility, PromptSweep
from pareto_lightning.metrics.functional import hypervolume, preference_utility

WORKER = Path(__file__).with_name("metrics_dist_worker.py")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _data() -> dict[str, torch.Tensor | int]:
    g = torch.Generator().manual_seed(0)
    angles = torch.rand(50, generator=g, dtype=torch.float64) * torch.pi / 2
    points2 = torch.stack([angles.cos(), angles.sin()], -1) * (
        1 - 0.3 * torch.rand(50, 1, generator=g)
    )  # [50, 2]
    points3 = torch.rand(20, 3, generator=g, dtype=torch.float64)
    rewards = torch.rand(37, 2, generator=g, dtype=torch.float64)
    first = torch.rand(37, 1, generator=g, dtype=torch.float64)
    return {
        "rewards": rewards,
        "weights": torch.cat([first, 1 - first], -1),  # [37, 2] on the simplex
        "pu_cut": 11,
        "points2": points2,
        "points3": points3,
        # A 3-prompt x 4-weight sweep without the pair (2, 3), G = 2: its 11 pairs twice over, so that the two rows
        # of each pair go to different ranks.
        "sweep_prompt": torch.tensor(
            [p for _ in range(2) for w in range(4) for p in range(3) if (p, w) != (2, 3)]
        ),
        "sweep_weight": torch.tensor(
            [w for _ in range(2) for w in range(4) for p in range(3) if (p, w) != (2, 3)]
        ),
        "sweep_rewards": torch.rand(22, 2, 2, generator=g, dtype=torch.float64),
    }


@pytest.fixture(scope="module")
def two_rank_results(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, list[dict]]:
    tmp = tmp_path_factory.mktemp("metrics_dist")
    data = _data()
    torch.save(data, tmp / "data.pt")
    env = dict(os.environ)
    package_root = str(Path(pareto_lightning.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([package_root, env.get("PYTHONPATH", "")])
    env.setdefault("OMP_NUM_THREADS", "1")
    cmd = [sys.executable, str(WORKER), str(_free_port()), str(tmp / "data.pt"), str(tmp)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = [json.loads((tmp / f"rank{rank}.json").read_text()) for rank in range(2)]
    return data, results


@pytest.mark.slow
def test_preference_utility_two_processes_match_single_process(two_rank_results) -> None:
    data, results = two_rank_results
    expected = preference_utility(data["rewards"], data["weights"], ideal_point=1.0, mu=0.1).item()
    single = PreferenceUtility(mu=0.1)
    single.update(data["rewards"], data["weights"])
    assert single.compute().item() == pytest.approx(expected, rel=1e-6)
    for res in results:  # float32 running sums: agreement to float32 precision
        assert res["pu"] == pytest.approx(expected, rel=1e-6)


@pytest.mark.slow
def test_hypervolume_two_processes_match_single_process(two_rank_results) -> None:
    data, results = two_rank_results
    expected2 = hypervolume(data["points2"], -0.1).item()
    expected3 = hypervolume(data["points3"], 0.0).item()
    single = Hypervolume(ref_point=-0.1)
    single.update(data["points2"])
    assert single.compute().item() == pytest.approx(expected2, rel=1e-6)
    for res in results:
        assert res["hv2"] == pytest.approx(expected2, rel=1e-6)  # float32 states
        assert res["hv3"] == pytest.approx(expected3, rel=1e-12)  # float64 states, rank 1 saw nothing


@pytest.mark.slow
def test_prompt_sweep_two_processes_match_single_process(two_rank_results) -> None:
    data, results = two_rank_results
    single = PromptSweep(num_prompts=3, num_weights=4, num_objectives=2)
    single.update(data["sweep_prompt"], data["sweep_weight"], data["sweep_rewards"])
    expected = single.compute()  # [3, 4, 2]
    assert expected[2, 3].isnan().all() and not expected[:, :3].isnan().any()  # (2, 3) not evaluated
    for res in results:
        torch.testing.assert_close(
            torch.tensor(res["prompt_sweep"], dtype=torch.float64), expected, equal_nan=True
        )
