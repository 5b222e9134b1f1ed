"""A few training steps of a ``recipes/hh`` recipe on CUDA GPUs, with step time, tokens per second and peak memory.

Called by ``benchmarks/gpu_smoke.sh`` (which documents the arguments); runnable on its own::

    python benchmarks/gpu_smoke_report.py --policy /models/Qwen2-0.5B-Instruct \\
        --helpful-rm /models/gpt2-large-helpful-reward_model --harmless-rm /models/gpt2-large-harmless-reward_model \\
        --ultrafeedback /data/ultrafeedback_binarized --beavertails /data/BeaverTails --gpus 4 --steps 8

The recipe is parsed by ``ParetoCLI`` as for a real run (FSDP2 through ``ModelParallelStrategy``, bf16-mixed,
MetaLoop); only the Hub names become the local paths, the device count and the run length change, and the
evaluation sweep is skipped. ``SmokeMeter`` times every optimizer step (CUDA synchronized at its start and end),
counts the completion tokens generated (``train/completion_length`` x completions, summed over ranks) and reads
``torch.cuda.max_memory_allocated`` / ``max_memory_reserved`` on every rank. The first step (CUDA and allocator
warm-up) is reported apart from the median of the others. Results are printed and written to
``<out>/gpu_smoke.json``. Extra arguments after ``--`` go to the CLI unchanged (e.g.
``-- --model.init_args.policy.init_args.max_new_tokens=128``). ``--dry-run`` prints the CLI arguments only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback

REPO = Path(__file__).resolve().parents[1]
_ENV = {"policy": "POLICY", "helpful_rm": "HELPFUL_RM", "harmless_rm": "HARMLESS_RM",
        "ultrafeedback": "ULTRAFEEDBACK", "beavertails": "BEAVERTAILS"}  # fmt: skip


class SmokeMeter(Callback):
    """Per-step wall time and generated tokens, and peak CUDA memory, gathered on rank 0 at the end of training."""

    def __init__(self, out: Path) -> None:
        self.out, self.times, self.tokens = out, [], []

    def _sync(self, pl_module) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._sync(pl_module)
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._sync(pl_module)
        self.times.append(time.perf_counter() - self._start)
        length = float(trainer.callback_metrics.get("train/completion_length", float("nan")))
        self.tokens.append(length * len(batch["prompts"]) * pl_module.num_generations)  # this rank's tokens

    def on_train_end(self, trainer, pl_module) -> None:
        cuda = pl_module.device.type == "cuda"
        device = pl_module.device
        memory = torch.tensor([torch.cuda.max_memory_allocated(device), torch.cuda.max_memory_reserved(device)]
                              if cuda else [0, 0], dtype=torch.float64, device=device)  # fmt: skip
        per_rank = trainer.strategy.all_gather(memory).view(-1, 2) / 2**30  # [world, 2] GiB
        times = torch.tensor(self.times, dtype=torch.float64, device=device)
        step_time = trainer.strategy.reduce(times, reduce_op="max").tolist()  # the slowest rank sets the pace
        tokens = trainer.strategy.reduce(torch.tensor(self.tokens, dtype=torch.float64, device=device),
                                         reduce_op="sum").tolist()  # fmt: skip
        if not trainer.is_global_zero:
            return
        steady = list(zip(step_time[1:], tokens[1:], strict=True)) or list(
            zip(step_time, tokens, strict=True)
        )
        result = {
            "gpus": trainer.world_size, "device": torch.cuda.get_device_name(device) if cuda else str(device),
            "steps": len(step_time), "first_step_s": step_time[0],
            "median_step_s": statistics.median(t for t, _ in steady),
            "median_tokens_per_s": statistics.median(n / t for t, n in steady),
            "tokens_per_step": statistics.median(n for _, n in steady),
            "peak_allocated_gib": per_rank[:, 0].tolist(), "peak_reserved_gib": per_rank[:, 1].tolist(),
        }  # fmt: skip
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "gpu_smoke.json").write_text(json.dumps(result, indent=1))
        print(format_report(result))


def format_report(r: dict) -> str:
    """The printed summary.

    Example:
        >>> print(format_report({"gpus": 4, "device": "H100", "steps": 8, "first_step_s": 30.0,
        ...     "median_step_s": 10.0, "median_tokens_per_s": 800.0, "tokens_per_step": 8000.0,
        ...     "peak_allocated_gib": [9.5, 9.0], "peak_reserved_gib": [11.0, 10.0]}))
        gpu smoke: 4 x H100, 8 steps
          step time          10.00 s median (first step 30.00 s, warm-up)
          generated tokens   8000 per step, 800 tokens/s (all GPUs), 200 tokens/s per GPU
          peak GPU memory    9.50 GiB allocated, 11.00 GiB reserved (max over ranks)
    """
    return "\n".join([
        f"gpu smoke: {r['gpus']} x {r['device']}, {r['steps']} steps",
        f"  step time          {r['median_step_s']:.2f} s median (first step {r['first_step_s']:.2f} s, warm-up)",
        f"  generated tokens   {r['tokens_per_step']:.0f} per step, {r['median_tokens_per_s']:.0f} tokens/s "
        f"(all GPUs), {r['median_tokens_per_s'] / r['gpus']:.0f} tokens/s per GPU",
        f"  peak GPU memory    {max(r['peak_allocated_gib']):.2f} GiB allocated, "
        f"{max(r['peak_reserved_gib']):.2f} GiB reserved (max over ranks)",
    ])  # fmt: skip


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    """Paths from the options or the environment variables ``POLICY``, ``HELPFUL_RM``, ``HARMLESS_RM``,
    ``ULTRAFEEDBACK``, ``BEAVERTAILS``; arguments after ``--`` are passed to the CLI."""
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for name, env in _ENV.items():
        parser.add_argument(f"--{name.replace('_', '-')}", default=os.environ.get(env),
                            help=f"local folder (default: ${env})")  # fmt: skip
    parser.add_argument("--recipe", default=str(REPO / "recipes" / "hh" / "weighted_meta.yaml"))
    parser.add_argument("--gpus", type=int, default=int(os.environ.get("GPUS", "0")) or None,
                        help="GPUs on this machine (default: $GPUS, else all visible)")  # fmt: skip
    parser.add_argument("--steps", type=int, default=int(os.environ.get("STEPS", "8")),
                        help="optimizer steps (default: $STEPS, else 8 = one meta-iteration)")  # fmt: skip
    parser.add_argument("--out", default=os.environ.get("OUT", "lightning_logs/gpu_smoke"))
    parser.add_argument("--dry-run", action="store_true", help="print the CLI arguments and exit")
    args = parser.parse_args(argv)
    missing = [f"--{n.replace('_', '-')} (or ${e})" for n, e in _ENV.items() if not getattr(args, n)]
    if missing:
        parser.error("local paths are required for: " + ", ".join(missing))
    if args.steps < 2:
        parser.error(f"--steps must be >= 2 (the first step is warm-up); got {args.steps}")
    if args.gpus is None:
        args.gpus = torch.cuda.device_count()
    if args.gpus < 1 and not args.dry_run:
        parser.error("no CUDA device visible; this benchmark needs GPUs (use --dry-run to see the arguments)")
    return args, extra


def cli_args(args: argparse.Namespace, extra: list[str]) -> list[str]:
    """The ``ParetoCLI`` arguments: the recipe with local paths, ``args.gpus`` devices, ``args.steps`` steps."""
    import yaml

    with open(args.recipe) as fh:
        functions = yaml.safe_load(fh)["model"]["init_args"]["reward"]["init_args"]["functions"]
    for function, path in zip(functions, (args.helpful_rm, args.harmless_rm), strict=True):
        function["init_args"]["name_or_path"] = str(path)  # a list cannot be indexed on the command line
    policy = "--model.init_args.policy.init_args"
    return ["--config", args.recipe,
            f"{policy}.model={args.policy}", f"{policy}.tokenizer={args.policy}",
            f"--model.init_args.reward.init_args.functions={json.dumps(functions)}",
            f"--data.init_args.train_prompts.init_args.path={args.ultrafeedback}",
            f"--data.init_args.eval_prompts.init_args.path={args.beavertails}",
            f"--trainer.devices={max(args.gpus, 1)}",
            f"--trainer.strategy.init_args.data_parallel_size={max(args.gpus, 1)}",
            f"--trainer.max_steps={args.steps}", "--trainer.limit_val_batches=0",
            f"--trainer.default_root_dir={args.out}", "--trainer.enable_progress_bar=false",
            "--trainer.log_every_n_steps=1", *extra]  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    args, extra = parse_args(argv)
    cli = cli_args(args, extra)
    if args.dry_run:
        print("\n".join(cli))
        return
    from pareto_lightning.algorithms import PreferenceAlignmentModule
    from pareto_lightning.cli import ParetoCLI
    from pareto_lightning.data import PreferencePromptDataModule

    runner = ParetoCLI(PreferenceAlignmentModule, PreferencePromptDataModule, subclass_mode_model=True,
                       subclass_mode_data=True, run=False, args=cli)  # fmt: skip
    runner.trainer.callbacks.append(SmokeMeter(Path(args.out)))
    runner.trainer.fit(runner.model, datamodule=runner.datamodule)


if __name__ == "__main__":
    main()
