"""A few steps of each Helpful/Harmless recipe and a ``validate``, with finiteness checks and a per-phase profile.

Run by ``benchmarks/gpu_smoke.sh`` (which documents the defaults), one process per part, so each part starts on a
fresh CUDA context and Lightning's launcher can re-run the same command for every GPU::

    python benchmarks/gpu_smoke.py fit meta --artifacts DIR --out OUT [--steps 8] [-- extra CLI arguments]
    python benchmarks/gpu_smoke.py fit plain --artifacts DIR --out OUT
    python benchmarks/gpu_smoke.py validate meta --artifacts DIR --out OUT   # from OUT/meta.ckpt, 3 weights
    python benchmarks/gpu_smoke.py report --out OUT                          # the table and OUT/gpu_smoke.json

``meta`` is ``recipes/hh/weighted_meta.yaml`` (Weighted-Meta-GRPO), ``plain`` is ``recipes/hh/weighted_grpo.yaml``
(Weighted-GRPO). Each is parsed by ``ParetoCLI`` as for a real run (``ModelParallelStrategy``, i.e. FSDP2, with
bf16-mixed); only the Hub names become the folders of ``--artifacts`` (written by ``benchmarks/hh_artifacts.py``),
the device count and the run length change, and the in-fit evaluation is off. After every optimizer step
``SmokeMeter`` checks that every parameter is finite (the local shards, one all-reduced flag) and records the step
time, the time of each phase and the peak memory. ``fit`` saves its last state to ``OUT/<recipe>.ckpt``;
``validate`` loads it, checks the weights, and runs the evaluation sweep over 3 weights (two of the training
grid and one between its points, so the seen and the unseen metrics are both defined) x 8 prompts.

The phases are timed by wrapping the module's methods on the instance, with the device synchronized before and
after each call (so asynchronous CUDA work is charged to the phase that queued it):

- ``generate``: ``policy.generate`` (sampling, including the FSDP2 gather of the weights);
- ``scoring``: the reward models (``MultiObjectiveReward``);
- ``policy log-probs`` and ``reference``: the two forward passes of ``sequence_log_probs``;
- ``backward``: ``LightningModule.backward``;
- ``optimizer``: ``optimizer_step`` less the closure it runs (``training_step`` and ``backward``): the
  finite-gradient check, clipping and the AdamW update;
- ``other``: the step less all of the above (loss maths, logging, callbacks such as the MetaLoop, data).

The first step (CUDA and allocator warm-up) is reported apart; the table gives medians over the other steps.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import statistics
import sys
import time
import traceback
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RECIPES = {"meta": REPO / "recipes/hh/weighted_meta.yaml", "plain": REPO / "recipes/hh/weighted_grpo.yaml"}
PHASES = ("generate", "scoring", "policy log-probs", "reference", "backward", "optimizer", "other")
VALIDATE_WEIGHTS = "[[1.0,0.0],[0.25,0.75],[0.0,1.0]]"  # two seen in training (the 0.1 grid), one unseen

# Wrapped method -> the raw timing it files (see ``step_phases`` for how phases are cut from them).
_WRAPPED = (
    ("policy", "generate", "generate"),
    ("reward", "forward", "scoring"),
    ("", "sequence_log_probs", "log_probs"),
    ("", "reference_log_probs", "reference"),
    ("", "training_step", "training_step"),
    ("", "backward", "backward"),
    ("", "optimizer_step", "optimizer_step"),
)


def step_phases(raw: dict[str, float], step_s: float) -> dict[str, float]:
    """Seconds per phase of one step, from the seconds spent in each wrapped method.

    Example:
        >>> raw = {"generate": 5.0, "scoring": 1.0, "log_probs": 2.0, "reference": 0.5,
        ...        "training_step": 8.5, "backward": 1.5, "optimizer_step": 10.5}
        >>> step_phases(raw, 11.0)
        {'generate': 5.0, 'scoring': 1.0, 'policy log-probs': 1.5, 'reference': 0.5, 'backward': 1.5, \
'optimizer': 0.5, 'other': 1.0}
    """
    t = {k: raw.get(k, 0.0) for k in ("generate", "scoring", "log_probs", "reference", "training_step",
                                       "backward", "optimizer_step")}  # fmt: skip
    phases = {
        "generate": t["generate"],
        "scoring": t["scoring"],
        "policy log-probs": t["log_probs"] - t["reference"],
        "reference": t["reference"],
        "backward": t["backward"],
        "optimizer": t["optimizer_step"] - t["training_step"] - t["backward"],
    }
    phases["other"] = step_s - sum(phases.values())
    return phases


def summarize_steps(steps: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the steps after the first (all steps when there is one), and the finiteness record.

    Example:
        >>> steps = [{"step_s": 9.0, "finite": True, "phases": {"generate": 8.0}, "decode_steps": 4},
        ...          {"step_s": 2.0, "finite": True, "phases": {"generate": 1.0}, "decode_steps": 4},
        ...          {"step_s": 4.0, "finite": True, "phases": {"generate": 3.0}, "decode_steps": 2}]
        >>> s = summarize_steps(steps)
        >>> s["median_step_s"], s["first_step_s"], s["phases"], s["finite_steps"], s["ms_per_decode_step"]
        (3.0, 9.0, {'generate': 2.0}, '3/3', 875.0)
    """
    steady = steps[1:] or steps
    med = statistics.median
    per_decode = [1000 * s["phases"]["generate"] / s["decode_steps"] for s in steady if s["decode_steps"]]
    return {
        "steps": len(steps),
        "finite_steps": f"{sum(s['finite'] for s in steps)}/{len(steps)}",
        "all_finite": all(s["finite"] for s in steps),
        "first_step_s": steps[0]["step_s"],
        "median_step_s": med(s["step_s"] for s in steady),
        "phases": {name: med(s["phases"][name] for s in steady) for name in steady[0]["phases"]},
        "ms_per_decode_step": med(per_decode) if per_decode else None,
    }


def format_table(results: dict[str, dict[str, Any]]) -> str:
    """The printed table: one row per part, medians in seconds, peak memory in GiB.

    Example:
        >>> part = {"device": "cpu", "world_size": 1, "steps": 8, "finite_steps": "8/8", "median_step_s": 2.0,
        ...         "first_step_s": 3.0, "ms_per_decode_step": 12.5, "peak_allocated_gib": None, "peak_rss_gib": 1.5,
        ...         "phases": dict.fromkeys(PHASES, 0.25)}
        >>> val = {"device": "cpu", "world_size": 1, "seconds": 4.0, "weights": 3, "prompts": 2, "finite": True,
        ...        "peak_allocated_gib": None, "peak_rss_gib": 1.2}
        >>> print(format_table({"meta": part, "plain": {"error": "NonFiniteError: step 3"}, "validate": val}))
        part     steps finite step s generate ms/decode scoring policy-lp reference backward optimizer other  peak GiB
        meta         8    8/8   2.00     0.25      12.5    0.25      0.25      0.25     0.25      0.25  0.25  1.50 rss
        plain    FAILED: NonFiniteError: step 3
        validate 3 weights x 2 prompts in 4.00 s, metrics finite: True, peak 1.20 rss
    """
    columns = ("steps", "finite", "step s", "generate", "ms/decode", "scoring", "policy-lp", "reference",
               "backward", "optimizer", "other")  # fmt: skip
    widths = [max(len(c) + 1, 6) for c in columns]
    lines = ["part    " + "".join(f"{c:>{w}}" for c, w in zip(columns, widths, strict=True)) + "  peak GiB"]
    for name, r in results.items():
        if "error" in r:
            lines.append(f"{name:<8} FAILED: {r['error']}")
        elif name == "validate":
            lines.append(f"{name:<8} {r['weights']} weights x {r['prompts']} prompts in {r['seconds']:.2f} s, "
                         f"metrics finite: {r['finite']}, peak {_peak(r)}")  # fmt: skip
        else:
            p, decode = r["phases"], r["ms_per_decode_step"]
            cells = [str(r["steps"]), r["finite_steps"], f"{r['median_step_s']:.2f}", f"{p['generate']:.2f}",
                     f"{decode:.1f}" if decode else "-",
                     *(f"{p[k]:.2f}" for k in ("scoring", "policy log-probs", "reference", "backward", "optimizer",
                                               "other"))]  # fmt: skip
            row = "".join(f"{c:>{w}}" for c, w in zip(cells, widths, strict=True))
            lines.append(f"{name:<8}{row}  {_peak(r)}")
    return "\n".join(lines)


def _peak(r: dict[str, Any]) -> str:
    if r.get("peak_allocated_gib") is not None:
        return f"{r['peak_allocated_gib']:.2f} allocated, {r['peak_reserved_gib']:.2f} reserved"
    return f"{r['peak_rss_gib']:.2f} rss"


# ----------------------------------------------------------------------------------------- in the trainer process
def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def finite_parameters(module) -> list[str]:
    """Names of the parameters holding NaN/inf on this rank (their local shards under FSDP2)."""
    import torch
    from torch.distributed.tensor import DTensor

    bad = []
    for name, p in module.named_parameters():
        local = p.to_local() if isinstance(p, DTensor) else p
        if not bool(torch.isfinite(local).all()):
            bad.append(name)
    return bad


def _memory(trainer, device) -> dict[str, float | None]:
    """Peak memory, the largest over ranks: CUDA allocated/reserved, and the host's resident set (GiB)."""
    import torch

    cuda = device.type == "cuda"
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # ru_maxrss is in KiB on Linux
    local = (
        [torch.cuda.max_memory_allocated(device), torch.cuda.max_memory_reserved(device)] if cuda else [0, 0]
    )
    peaks = trainer.strategy.reduce(
        torch.tensor([*local, rss], dtype=torch.float64, device=device), reduce_op="max"
    )
    gib = (peaks / 2**30).tolist()
    return {"peak_allocated_gib": gib[0] if cuda else None, "peak_reserved_gib": gib[1] if cuda else None,
            "peak_rss_gib": gib[2]}  # fmt: skip


def _device_name(device) -> str:
    import torch

    return torch.cuda.get_device_name(device) if device.type == "cuda" else device.type


def _make_meter():
    from lightning.pytorch.callbacks import Callback

    class SmokeMeter(Callback):
        """Times each optimizer step and its phases, and checks after it that every parameter is finite."""

        def __init__(self) -> None:
            self.steps: list[dict[str, Any]] = []
            self.raw: dict[str, float] = {}
            self.decode_steps = 0

        def _wrap(self, owner, name: str, label: str, device) -> None:
            inner = getattr(owner, name)

            @functools.wraps(inner)
            def timed(*args, **kwargs):
                _sync(device)
                start = time.perf_counter()
                try:
                    out = inner(*args, **kwargs)
                finally:
                    _sync(device)
                    self.raw[label] = self.raw.get(label, 0.0) + time.perf_counter() - start
                if label == "generate":
                    self.decode_steps = max(self.decode_steps, out.completion_ids.shape[1])
                return out

            setattr(owner, name, timed)

        def on_fit_start(self, trainer, pl_module) -> None:
            for owner, name, label in _WRAPPED:
                self._wrap(getattr(pl_module, owner) if owner else pl_module, name, label, pl_module.device)

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            _sync(pl_module.device)
            self.raw, self.decode_steps = {}, 0
            self._start = time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            _sync(pl_module.device)
            step_s = time.perf_counter() - self._start
            bad = finite_parameters(pl_module)
            finite = not trainer.strategy.reduce_boolean_decision(bool(bad), all=False)
            self.steps.append({"step": trainer.global_step, "step_s": step_s, "finite": finite,
                               "nonfinite_on_rank": bad[:5], "decode_steps": self.decode_steps,
                               "phases": step_phases(self.raw, step_s), "raw": dict(self.raw)})  # fmt: skip

    return SmokeMeter()


def _make_weight_check():
    from lightning.pytorch.callbacks import Callback

    class WeightCheck(Callback):
        """Are the weights ``validate`` loaded from the checkpoint finite (on every rank)?"""

        finite: bool | None = None

        def on_validation_start(self, trainer, pl_module) -> None:
            bad = finite_parameters(pl_module)
            self.finite = not trainer.strategy.reduce_boolean_decision(bool(bad), all=False)

    return WeightCheck()


def _cli_args(args: argparse.Namespace, extra: list[str]) -> list[str]:
    """The recipe, pointed at the local artifacts; ``fit`` trains ``--steps`` steps with the evaluation off."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from hh_artifacts import HHArtifacts

    recipe = RECIPES[args.recipe]
    accelerator = ["--trainer.accelerator=cpu"] if args.accelerator == "cpu" else []
    return ["--config", str(recipe), *HHArtifacts(Path(args.artifacts)).overrides(recipe), *accelerator,
            f"--trainer.devices={args.devices}", f"--trainer.strategy.init_args.data_parallel_size={args.devices}",
            f"--trainer.max_steps={args.steps}", f"--trainer.default_root_dir={Path(args.out) / _part_name(args)}",
            "--trainer.enable_progress_bar=false", "--trainer.log_every_n_steps=1",
            *(["--trainer.limit_val_batches=0"] if args.part == "fit" else []), *extra]  # fmt: skip


def _part_name(args: argparse.Namespace) -> str:
    return args.recipe if args.part == "fit" else args.part


def _build(args: argparse.Namespace, extra: list[str]):
    from pareto_lightning.algorithms import PreferenceAlignmentModule
    from pareto_lightning.cli import ParetoCLI
    from pareto_lightning.data import PreferencePromptDataModule

    return ParetoCLI(PreferenceAlignmentModule, PreferencePromptDataModule, subclass_mode_model=True,
                     subclass_mode_data=True, run=False, args=_cli_args(args, extra))  # fmt: skip


def run_fit(args: argparse.Namespace, extra: list[str]) -> dict[str, Any]:
    cli = _build(args, extra)
    meter = _make_meter()
    cli.trainer.callbacks.append(meter)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    cli.trainer.save_checkpoint(Path(args.out) / f"{args.recipe}.ckpt")  # a folder of shards under FSDP2
    device = cli.model.device
    result = {"recipe": str(RECIPES[args.recipe].relative_to(REPO)), "device": _device_name(device),
              "world_size": cli.trainer.world_size, **summarize_steps(meter.steps),
              **_memory(cli.trainer, device), "per_step": meter.steps}  # fmt: skip
    return result if cli.trainer.is_global_zero else {}


def run_validate(args: argparse.Namespace, extra: list[str]) -> dict[str, Any]:
    import math

    prompts = 8
    cli = _build(args, [f"--data.init_args.eval_weights={VALIDATE_WEIGHTS}",
                        f"--data.init_args.num_eval_prompts={prompts}", *extra])  # fmt: skip
    check = _make_weight_check()
    cli.trainer.callbacks.append(check)
    device_start = time.perf_counter()
    metrics = cli.trainer.validate(cli.model, datamodule=cli.datamodule,
                                   ckpt_path=str(Path(args.out) / f"{args.recipe}.ckpt"))[0]  # fmt: skip
    seconds = time.perf_counter() - device_start
    device = cli.model.device
    memory = _memory(cli.trainer, device)
    finite = bool(check.finite) and all(math.isfinite(float(v)) for v in metrics.values())
    result = {"device": _device_name(device), "world_size": cli.trainer.world_size, "seconds": seconds,
              "weights": 3, "prompts": prompts, "finite": finite, "metrics": {k: float(v) for k, v in metrics.items()},
              **memory}  # fmt: skip
    return result if cli.trainer.is_global_zero else {}


def report(out: Path) -> int:
    """Print the table of every part written under ``out``; write ``out/gpu_smoke.json``. 1 if a part failed."""
    results = {}
    for part in ("meta", "plain", "validate"):
        path = out / f"{part}.json"
        results[part] = (
            json.loads(path.read_text()) if path.exists() else {"error": "no result (see its log above)"}
        )
    (out / "gpu_smoke.json").write_text(json.dumps(results, indent=1))
    print(format_table(results))
    fits_finite = all(results[p].get("all_finite", False) for p in ("meta", "plain"))
    ok = all("error" not in r for r in results.values()) and fits_finite and results["validate"]["finite"]
    print(f"gpu smoke: {'PASSED' if ok else 'FAILED'} ({out / 'gpu_smoke.json'})")
    return 0 if ok else 1


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("part", choices=["fit", "validate", "report"])
    parser.add_argument("recipe", nargs="?", choices=sorted(RECIPES), default="meta")
    parser.add_argument("--artifacts", help="folder written by benchmarks/hh_artifacts.py")
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=8, help="optimizer steps (8: one meta-iteration)")
    parser.add_argument("--devices", type=int, default=1)
    parser.add_argument("--accelerator", choices=["gpu", "cpu"], default="gpu")
    args = parser.parse_args(argv)
    if args.part != "report" and not args.artifacts:
        parser.error(f"`{args.part}` needs --artifacts")
    if args.steps < 2:
        parser.error(f"--steps must be >= 2 (the first step is warm-up); got {args.steps}")
    return args, extra


def main(argv: list[str] | None = None) -> int:
    args, extra = parse_args(sys.argv[1:] if argv is None else argv)
    out = Path(args.out)
    if args.part == "report":
        return report(out)
    name = _part_name(args)
    out.mkdir(parents=True, exist_ok=True)
    try:
        result = (run_fit if args.part == "fit" else run_validate)(args, extra)
    except Exception as error:  # recorded for the report, then raised: the part fails with its own traceback
        if int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0"))) == 0:
            (out / f"{name}.json").write_text(json.dumps({"error": f"{type(error).__name__}: {error}"[:500]}))
        traceback.print_exc()
        return 1
    finally:
        from pareto_lightning import end_process_group

        end_process_group()
    if result:
        (out / f"{name}.json").write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # No interpreter teardown once the results are written: gloo can abort in it (docs/scaling.md).
    os._exit(code)
