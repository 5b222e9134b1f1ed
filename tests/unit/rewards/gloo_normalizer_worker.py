"""Two-process gloo run of the reward normalizers, for ``test_distributed_normalizers.py``.

Usage: ``python gloo_normalizer_worker.py DATA_FILE OUT_DIR``. ``DATA_FILE`` holds
``{"steps": [[rank0, rank1], ...]}`` with one ``[N_r, K]`` batch per rank and step; each rank writes
``OUT_DIR/rank{r}.pt`` with its normalized outputs and final statistics for every normalizer.
"""

import os
import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

# imported once here, before the fork, rather than once per rank
from pareto_lightning.rewards import MaxNormalizer, ZScoreNormalizer


def run(rank: int, data_file: str, out_dir: str) -> None:
    dist.init_process_group(
        "gloo", init_method=f"file://{os.path.join(out_dir, 'pg')}", rank=rank, world_size=2
    )
    steps = torch.load(data_file, weights_only=True)["steps"]
    results = {}
    for name, norm in (("max", MaxNormalizer()), ("std", ZScoreNormalizer())):
        outputs = [norm(step[rank]) for step in steps]
        results[name] = {"outputs": outputs, "state": norm.state_dict()}
    torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    # fork: no second import of torch per rank, which keeps the test to a couple of seconds
    mp.start_processes(run, args=(sys.argv[1], sys.argv[2]), nprocs=2, start_method="fork")
