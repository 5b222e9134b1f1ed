"""The 2-process gloo test of the metric classes (run by test_metrics_distributed.py).

Usage: python metrics_dist_worker.py PORT DATA_FILE OUT_DIR

The libraries are imported once, then the two ranks are forked: importing torchmetrics costs several seconds
per process, which would dominate the test.
"""

from __future__ import annotations

import datetime
import json
import multiprocessing
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from pareto_lightning.metrics import Hypervolume, PreferenceUtility, PromptSweep

WORLD_SIZE = 2


def run_rank(rank: int, world_size: int, port: int, data_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=world_size,
        timeout=datetime.timedelta(seconds=60),
    )
    data = torch.load(data_file, weights_only=True)
    result = {}

    # Preference utility: rows split unevenly, each rank in two batches.
    rewards, weights = data["rewards"], data["weights"]
    cut = data["pu_cut"]
    mine = slice(0, cut) if rank == 0 else slice(cut, None)
    pu = PreferenceUtility(mu=0.1, ideal_point=1.0)
    r, w = rewards[mine], weights[mine]
    pu.update(r[: len(r) // 2], w[: len(r) // 2])
    pu.update(r[len(r) // 2 :], w[len(r) // 2 :])
    result["pu"] = pu.compute().item()

    # Hypervolume, 2-D, default float32 states: each rank sees half of the points.
    points2 = data["points2"]
    half = points2.shape[0] // 2
    hv2 = Hypervolume(ref_point=-0.1)
    hv2.update(points2[:half] if rank == 0 else points2[half:])
    result["hv2"] = hv2.compute().item()

    # Hypervolume, 3-D, float64 states: rank 1 never updates (it must still join the gather and learn K).
    hv3 = Hypervolume(ref_point=[0.0, 0.0, 0.0])
    hv3.set_dtype(torch.float64)
    if rank == 0:
        hv3.update(data["points3"])
    result["hv3"] = hv3.compute().item()

    # Per-(prompt, weight) means: the rows dealt round-robin, as the data module deals the sweep.
    prompts, weights_index, rows = data["sweep_prompt"], data["sweep_weight"], data["sweep_rewards"]
    mine = slice(rank, None, world_size)
    sweep = PromptSweep(num_prompts=3, num_weights=4, num_objectives=2)
    sweep.update(prompts[mine], weights_index[mine], rows[mine])
    result["prompt_sweep"] = sweep.compute().tolist()

    Path(out_dir, f"rank{rank}.json").write_text(json.dumps(result))
    dist.barrier()
    dist.destroy_process_group()


def main(port: int, data_file: str, out_dir: str) -> int:
    ctx = multiprocessing.get_context("fork")
    procs = [
        ctx.Process(target=run_rank, args=(r, WORLD_SIZE, port, data_file, out_dir))
        for r in range(WORLD_SIZE)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=60)
    for proc in procs:
        if proc.is_alive():
            proc.kill()
    return max(abs(proc.exitcode if proc.exitcode is not None else 1) for proc in procs)


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]), sys.argv[2], sys.argv[3]))
