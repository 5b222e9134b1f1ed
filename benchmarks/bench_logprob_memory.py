"""Peak memory and time of ``PreferencePolicy.log_probs`` forward+backward: full logits against chunked.

One training pass of the policy's log-probs (forward, a masked sum, backward) at N=64 completions of T=128 tokens
with a 49,152-token vocabulary, in a fresh subprocess per cell, so each cell's peak resident memory
(``resource.getrusage(...).ru_maxrss``) is its own. The model is a randomly initialized Llama with SmolLM2-135M's
width and vocabulary (hidden 576, 9 heads, 3 key/value heads, MLP 1,536, tied embeddings) but 2 layers instead
of 30, to keep the run to minutes: the decoder's own activations (about 1.3 GB here) add the same to every cell,
so with all 30 layers the ratios would be smaller. Prompts are 16 tokens, some left-padded. Cells: ``full``
(``logprob_chunk_size=None``: the ``[N, T, V]`` logits) and chunked at a few chunk sizes (512 is the policy's
default). Each cell prints its peak, its growth over the memory held before the pass (model and inputs), the
wall and CPU seconds of the pass (the last of ``--repeats``) and the largest log-prob difference from the full
cell; the ratios are to the full cell, side by side, from one run::

    OMP_NUM_THREADS=1 python benchmarks/bench_logprob_memory.py --chunks 256 512 1024 4096
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

N, T, P, VOCAB = 64, 128, 16, 49_152


def _rss_mb() -> float:
    """Resident memory now (MB), from /proc."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def cell(chunk: int | None, repeats: int, out_file: str) -> None:
    """One cell, in this (fresh) process: build, run the pass ``repeats`` times, write the numbers."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from pareto_lightning.policy import PreferencePolicy
    from pareto_lightning.rollout import Rollout
    from pareto_lightning.tasks import LexiconTokenizer

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=VOCAB, hidden_size=576, intermediate_size=1536, num_hidden_layers=2,
                         num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=2048,
                         tie_word_embeddings=True)  # fmt: skip
    # Only log_probs runs: the tokenizer (which generation would use) does not need the model's vocabulary.
    policy = PreferencePolicy(LlamaForCausalLM(config), LexiconTokenizer(), max_new_tokens=T, temperature=0.9,
                              logprob_chunk_size=chunk)  # fmt: skip
    gen = torch.Generator().manual_seed(1)
    prompt_mask = torch.ones(N, P, dtype=torch.long)
    prompt_mask[::4, :5] = 0  # every fourth prompt is left-padded
    completion_mask = torch.ones(N, T, dtype=torch.long)
    completion_mask[::3, 100:] = 0  # every third completion stops early
    rollout = Rollout(prompts=[""] * N, prompt_ids=torch.randint(0, VOCAB, (N, P), generator=gen) * prompt_mask,
                      prompt_mask=prompt_mask, completion_ids=torch.randint(0, VOCAB, (N, T), generator=gen),
                      completion_mask=completion_mask, completions=[""] * N, weights=torch.full((N, 2), 0.5),
                      group_size=8)  # fmt: skip
    before = _rss_mb()
    for _ in range(repeats):
        policy.model.zero_grad(set_to_none=True)
        start, cpu_start = time.perf_counter(), time.process_time()
        logp = policy.log_probs(rollout)  # [N, T]
        (logp * rollout.completion_mask).sum().backward()
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    torch.save(logp.detach(), out_file + ".pt")
    numbers = {"before": before, "peak": _peak_mb(), "seconds": seconds, "cpu": cpu_seconds}
    Path(out_file).write_text(json.dumps(numbers))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chunks", type=int, nargs="+", default=[256, 512, 1024, 4096])
    parser.add_argument("--repeats", type=int, default=1, help="passes per cell; the last one is timed")
    parser.add_argument("--cell", type=int, help=argparse.SUPPRESS)  # internal: run one cell (0 = full)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cell is not None:
        return cell(args.cell or None, args.repeats, args.out)
    print(f"N={N} T={T} prompt={P} V={VOCAB}; Llama h576 L2 (SmolLM2-135M width, 2 of its 30 layers), float32, "
          f"torch {torch.__version__}, {os.environ.get('OMP_NUM_THREADS', 'default')} threads, "
          f"{args.repeats} pass(es) per cell")  # fmt: skip
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for chunk in [0, *args.chunks]:
            out = os.path.join(tmp, f"cell{chunk}")
            flags = ["--cell", str(chunk), "--out", out, "--repeats", str(args.repeats)]
            subprocess.run([sys.executable, __file__, *flags], check=True)
            numbers = json.loads(Path(out).read_text())
            logp = torch.load(out + ".pt")
            rows.append((chunk, numbers, logp))
            print(f"  done: {'full' if not chunk else f'chunk {chunk}'}", flush=True)
    full, full_logp = rows[0][1], rows[0][2]
    full_growth = full["peak"] - full["before"]
    print(f"{'cell':>12} {'peak MB':>9} {'growth MB':>10} {'peak x':>7} {'growth x':>9} {'fwd+bwd s':>10} "
          f"{'time x':>7} {'CPU s':>7} {'CPU x':>6} {'max |dlogp|':>12}")  # fmt: skip
    for chunk, numbers, logp in rows:
        growth = numbers["peak"] - numbers["before"]
        name = "full" if not chunk else f"chunk {chunk}"
        print(f"{name:>12} {numbers['peak']:9.0f} {growth:10.0f} {full['peak'] / numbers['peak']:7.2f} "
              f"{full_growth / growth:9.2f} {numbers['seconds']:10.2f} {numbers['seconds'] / full['seconds']:7.2f} "
              f"{numbers['cpu']:7.2f} {numbers['cpu'] / full['cpu']:6.2f} "
              f"{(logp - full_logp).abs().max().item():12.2e}")  # fmt: skip
    print("peak x, growth x: full cell / this cell (higher = less memory); time x, CPU x: this cell / full cell "
          "(wall and process CPU seconds; CPU time is less sensitive to other load on the machine).")  # fmt: skip


if __name__ == "__main__":
    main()
