"""One gloo process: the chunked log-probs of an FSDP2-sharded policy (tied embeddings, the root resharding after
forward) against the full logits of the same unsharded policy, two steps of values and gradients; then the same
under bf16 mixed precision, chunked against full, both sharded. Prints ``ok`` or what differed. Run by
``test_chunked_log_probs.py``."""

import os
import socket
import sys

import torch


def _grads(policy, rollout) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    from torch.distributed.tensor import DTensor

    policy.model.zero_grad()
    logp = policy.log_probs(rollout)  # [N, T]
    weights = torch.linspace(-1.0, 1.0, logp.numel()).view_as(logp)  # any upstream gradient
    (logp * weights * rollout.completion_mask).sum().backward()
    grads = {}
    for name, p in policy.named_parameters():
        if p.grad is not None:
            grad = p.grad.full_tensor() if isinstance(p.grad, DTensor) else p.grad
            grads[name] = grad.detach().float().clone()
    return logp.detach().float(), grads


def _compare(what: str, got, want, atol: float, rtol: float) -> list[str]:
    (logp, grads), (ref_logp, ref_grads) = got, want
    problems = []
    if not torch.allclose(logp, ref_logp, atol=atol, rtol=rtol):
        problems.append(f"{what}: log-probs differ by {(logp - ref_logp).abs().max().item():.3g}")
    if grads.keys() != ref_grads.keys() or not grads:
        problems.append(f"{what}: gradients of {sorted(grads)} instead of {sorted(ref_grads)}")
    for name in sorted(grads.keys() & ref_grads.keys()):
        if not torch.allclose(grads[name], ref_grads[name], atol=atol, rtol=rtol):
            gap = (grads[name] - ref_grads[name]).abs().max().item()
            problems.append(f"{what}: gradient of {name} differs by {gap:.3g}")
    return problems


def main() -> None:
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh

    import pareto_lightning.scoring as scoring
    from pareto_lightning.policy import PreferencePolicy
    from pareto_lightning.sharding import end_process_group, mixed_precision_policy, shard_causal_lm
    from pareto_lightning.tasks import LexiconLM, LexiconTokenizer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK="0", WORLD_SIZE="1")
    dist.init_process_group("gloo")
    mesh = init_device_mesh("cpu", (1,))
    calls = []
    chunked = scoring.chunked_token_log_probs
    scoring.chunked_token_log_probs = lambda *args: calls.append(1) or chunked(*args)

    def policy(chunk: int | None, mp: str | None = None) -> PreferencePolicy:
        made = PreferencePolicy(LexiconLM(seed=3), LexiconTokenizer(), max_new_tokens=6, temperature=0.7,
                                logprob_chunk_size=chunk)  # fmt: skip
        if mp != "unsharded":
            shard_causal_lm(made.model, mesh, mixed_precision=mixed_precision_policy(mp))
        return made

    torch.manual_seed(0)
    plain = policy(None, "unsharded")
    rollout = plain.generate(
        ["write a note about the river", "hi"], torch.tensor([[0.3, 0.7], [0.9, 0.1]]), 2
    )
    problems = []
    sharded, full_bf16, chunked_bf16 = policy(5), policy(None, "bf16-mixed"), policy(5, "bf16-mixed")
    for step in range(2):
        want = _grads(plain, rollout)
        problems += _compare(f"float32 step {step}", _grads(sharded, rollout), want, atol=1e-5, rtol=1e-5)
        with torch.no_grad():  # the frozen reference's forward
            no_grad = sharded.log_probs(rollout)
        problems += _compare(f"no-grad step {step}", (no_grad, {"-": no_grad}), (want[0], {"-": want[0]}),
                             atol=1e-5, rtol=1e-5)  # fmt: skip
        bf16 = _grads(chunked_bf16, rollout)
        problems += _compare(
            f"bf16-mixed step {step}", bf16, _grads(full_bf16, rollout), atol=2e-2, rtol=2e-2
        )
        for p, q in zip(plain.parameters(), sharded.parameters(), strict=True):  # one SGD step on both
            p.data -= 0.1 * p.grad
            q.data -= 0.1 * q.grad
    if len(calls) != 6:
        problems.append(f"the chunked path ran {len(calls)} times instead of 6")
    print("\n".join(problems) or "ok")
    end_process_group()


if __name__ == "__main__":
    main()
    sys.stdout.flush()
    os._exit(0)  # no interpreter teardown once the answer is written (see docs/scaling.md)
