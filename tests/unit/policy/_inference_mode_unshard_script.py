"""One gloo process: an FSDP2-sharded policy generates under ``torch.inference_mode`` first (as Lightning's
``validate`` does), then generates again and trains; prints ``ok`` or the error. Run by ``test_finite.py``."""

import os
import socket
import sys

import torch


def main() -> None:
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh

    from pareto_lightning.sharding import end_process_group, shard_causal_lm
    from pareto_lightning.tasks import LexiconTask

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK="0", WORLD_SIZE="1")
    dist.init_process_group("gloo")
    torch.manual_seed(0)
    policy = LexiconTask().policy(max_new_tokens=4)
    shard_causal_lm(policy.model, init_device_mesh("cpu", (1,)))
    w = torch.tensor([[0.5, 0.5]])
    try:
        with torch.inference_mode():
            policy.generate(["write a note"], w, 2, do_sample=False)  # the process's first unshard
        rollout = policy.generate(["write a note"], w, 2)
        policy.log_probs(rollout).sum().backward()
        with torch.inference_mode():
            policy.generate(["write a note"], w, 2)
        print("ok")
    except RuntimeError as error:
        print("error:", error)
    end_process_group()


if __name__ == "__main__":
    main()
    sys.stdout.flush()
    os._exit(0)  # no interpreter teardown once the answer is written (see docs/scaling.md)
