import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pareto_lightning.rewards import MaxNormalizer, ZScoreNormalizer

WORKER = Path(__file__).with_name("gloo_normalizer_worker.py")


@pytest.mark.slow
def test_two_gloo_ranks_normalize_like_one_process_on_the_concatenated_data(tmp_path):
    g = torch.Generator().manual_seed(0)
    # ranks get different sizes and clearly different distributions, so rank-local statistics would differ
    steps = [
        [torch.randn(3, 2, generator=g), 5.0 + 3.0 * torch.randn(5, 2, generator=g)],
        [torch.randn(4, 2, generator=g), -8.0 + torch.randn(2, 2, generator=g)],
        [0.1 * torch.randn(1, 2, generator=g), 2.0 * torch.randn(6, 2, generator=g)],
    ]
    torch.save({"steps": steps}, tmp_path / "data.pt")
    root = str(Path(__file__).resolve().parents[3])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run(
        [sys.executable, str(WORKER), str(tmp_path / "data.pt"), str(tmp_path)],
        timeout=120,
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]

    for name, cls in (("max", MaxNormalizer), ("std", ZScoreNormalizer)):
        single, local = cls(), cls()
        for i, (a, b) in enumerate(steps):
            expected = single(torch.cat([a, b]))  # [N_0 + N_1, K]
            local(a)
            torch.testing.assert_close(ranks[0][name]["outputs"][i], expected[: len(a)])
            torch.testing.assert_close(ranks[1][name]["outputs"][i], expected[len(a) :])
        for key, value in single.state_dict().items():
            for r in range(2):
                torch.testing.assert_close(ranks[r][name]["state"][key], value, msg=f"{name} rank {r} {key}")
        # the cross-rank reduction mattered: rank 0 alone would have other statistics
        local_stat = local.state_dict()["max_abs" if name == "max" else "mean"]
        assert not torch.allclose(local_stat, ranks[0][name]["state"]["max_abs" if name == "max" else "mean"])

    # and the pooled statistics are those of all the data (independent reference)
    data = torch.cat([x for step in steps for x in step]).double()
    torch.testing.assert_close(ranks[1]["std"]["state"]["mean"], data.mean(0))
    torch.testing.assert_close(ranks[1]["std"]["state"]["m2"] / data.shape[0], data.var(0, unbiased=False))
    torch.testing.assert_close(ranks[1]["max"]["state"]["max_abs"], data.abs().amax(0))
