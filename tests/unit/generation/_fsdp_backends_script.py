"""Two gloo processes: each backend generating with an FSDP2-sharded policy. Run by ``test_fsdp_backends.py``.

Per backend and rank it prints one JSON line: the all-gathers of one rollout, whether the greedy completions
equal those of an unsharded copy holding the same weights (before any update, after an optimizer step, after an
in-place interpolation of the local shards), and whether they changed with the weights; or the error.
"""

import json
import os
import socket
import sys

import torch


def full_state(model):
    from torch.distributed.tensor import DTensor

    return {
        k: (v.full_tensor() if isinstance(v, DTensor) else v).detach().clone()
        for k, v in model.state_dict().items()
    }


def run_rank(rank, port, names):
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp._fully_shard import _fsdp_param_group

    from pareto_lightning.generation import (
        ContinuousBatchingGeneration,
        HFGeneration,
        StaticCacheGeneration,
    )
    from pareto_lightning.policy import PreferencePolicy
    from pareto_lightning.sharding import end_process_group, shard_causal_lm
    from pareto_lightning.tasks import LexiconLM, LexiconTokenizer

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2")
    dist.init_process_group("gloo")
    gathers = []
    inner = _fsdp_param_group.foreach_all_gather

    def counted(*args, **kwargs):
        gathers.append(1)
        return inner(*args, **kwargs)

    _fsdp_param_group.foreach_all_gather = counted
    backends = {
        "hf": HFGeneration(),
        "hf_per_token": HFGeneration(),  # unshard_for_generation: false, the counter's control
        "static": StaticCacheGeneration(compile=False),
        "static_compiled": StaticCacheGeneration(compile_backend="aot_eager", compile_mode="default"),
        "continuous": ContinuousBatchingGeneration(page_size=16),
    }
    prompts = ["write a note about the river", "hi"]
    w = torch.tensor([[0.3, 0.7], [0.9, 0.1]])
    for name in names:
        torch._dynamo.reset()
        tok = LexiconTokenizer()
        policy = PreferencePolicy(LexiconLM(seed=1), tok, max_new_tokens=10, generation=backends[name],
                                  unshard_for_generation=name != "hf_per_token")  # fmt: skip
        reference = PreferencePolicy(LexiconLM(seed=1), tok, max_new_tokens=10)  # unsharded, same weights
        target = LexiconLM(seed=11)  # the weights the interpolation moves towards, sharded alike
        shard_causal_lm(policy.model, init_device_mesh("cpu", (2,)))
        shard_causal_lm(target, init_device_mesh("cpu", (2,)))
        units = sum(1 for m in policy.model.modules() if type(m).__name__.startswith("FSDP"))
        record = {"rank": rank, "name": name, "units": units}
        try:
            gathers.clear()
            before = policy.generate(prompts, w, 1, do_sample=False).completion_ids
            record["gathers"] = len(gathers)
            record["equal_before"] = torch.equal(
                before, reference.generate(prompts, w, 1, False).completion_ids
            )
            optimizer = torch.optim.AdamW(policy.model.parameters(), lr=0.05)
            policy.log_probs(policy.generate(prompts, w, 1, do_sample=False)).sum().backward()
            optimizer.step()
            reference.model.load_state_dict(full_state(policy.model))
            stepped = policy.generate(prompts, w, 1, do_sample=False).completion_ids
            record["equal_after_step"] = torch.equal(
                stepped, reference.generate(prompts, w, 1, False).completion_ids
            )
            record["changed_by_step"] = not torch.equal(stepped, before)
            with torch.no_grad():
                for param, other in zip(policy.model.parameters(), target.parameters(), strict=True):
                    param.data.lerp_(
                        other.data, 0.5
                    )  # elementwise on the local shards, as Reptile interpolates
            reference.model.load_state_dict(full_state(policy.model))
            moved = policy.generate(prompts, w, 1, do_sample=False).completion_ids
            record["equal_after_lerp"] = torch.equal(
                moved, reference.generate(prompts, w, 1, False).completion_ids
            )
            record["changed_by_lerp"] = not torch.equal(moved, stepped)
        except Exception as error:  # reported, and the next backend runs
            record["error"] = f"{type(error).__name__}: {error}"
        print(json.dumps(record), flush=True)
        dist.barrier()
    end_process_group()


def main() -> None:
    import torch.multiprocessing as mp

    names = sys.argv[1].split(",")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(run_rank, args=(port, names), nprocs=2)


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
    sys.stdout.flush()
    os._exit(0)
