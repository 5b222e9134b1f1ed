"""``benchmarks/gpu_smoke.sh`` with no arguments, dry-run on the CPU with the tiny stand-ins (the same code path a
GPU machine runs, FSDP2 over one gloo process), and the report's own maths."""

from __future__ import annotations

import doctest
import json
import os
import subprocess
from pathlib import Path

import gpu_smoke
import pytest
import torch

REPO = Path(__file__).resolve().parents[2]


def test_report_maths_doctests():
    assert doctest.testmod(gpu_smoke).failed == 0


@pytest.mark.slow
def test_one_command_runs_both_recipes_and_validate_with_finite_weights(tmp_path):
    env = {**os.environ, "ACCELERATOR": "cpu", "SCALE": "tiny", "OUT": str(tmp_path / "smoke"),
           "STEPS": "8", "OMP_NUM_THREADS": "1"}  # fmt: skip
    done = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_smoke.sh"), "--",
                           "--model.init_args.policy.init_args.max_new_tokens=8"],
                          env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    log = done.stdout[-3000:] + done.stderr[-3000:]
    assert done.returncode == 0, log
    assert "gpu smoke: PASSED" in done.stdout, log
    result = json.loads((tmp_path / "smoke" / "gpu_smoke.json").read_text())
    for recipe in ("meta", "plain"):
        part = result[recipe]
        assert part["steps"] == 8 and part["finite_steps"] == "8/8", part
        assert [s["step"] for s in part["per_step"]] == list(range(1, 9))
        assert set(part["phases"]) == set(gpu_smoke.PHASES)
        # every step generated, scored, ran both forwards, a backward and an optimizer step
        for step in part["per_step"]:
            assert all(
                step["raw"][k] > 0 for k in ("generate", "scoring", "log_probs", "reference", "backward")
            )
            assert 1 <= step["decode_steps"] <= 8
        assert part["peak_rss_gib"] > 0 and part["peak_allocated_gib"] is None
    assert result["meta"]["recipe"] == "recipes/hh/weighted_meta.yaml"
    assert result["plain"]["recipe"] == "recipes/hh/weighted_grpo.yaml"
    validate = result["validate"]
    assert validate["finite"] and validate["weights"] == 3
    assert {"val/pu_seen", "val/pu_unseen", "val/hypervolume"} <= set(validate["metrics"])
    table = done.stdout.splitlines()
    assert any(line.startswith("meta ") for line in table) and any(
        line.startswith("validate ") for line in table
    )


def test_nonfinite_weights_are_named():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 1))
    assert gpu_smoke.finite_parameters(model) == []
    with torch.no_grad():
        model[1].bias.fill_(float("nan"))
    assert gpu_smoke.finite_parameters(model) == ["1.bias"]


def _write(out: Path, **parts) -> None:
    for name, value in parts.items():
        (out / f"{name}.json").write_text(json.dumps(value))


def _fit(finite: bool) -> dict:
    return {"steps": 2, "finite_steps": "2/2" if finite else "1/2", "all_finite": finite, "median_step_s": 1.0,
            "first_step_s": 2.0, "ms_per_decode_step": 5.0, "peak_allocated_gib": 1.0, "peak_reserved_gib": 2.0,
            "phases": dict.fromkeys(gpu_smoke.PHASES, 0.1)}  # fmt: skip


_VALIDATE = {"seconds": 1.0, "weights": 3, "prompts": 8, "finite": True, "peak_allocated_gib": 1.0,
             "peak_reserved_gib": 2.0}  # fmt: skip


@pytest.mark.parametrize(
    "parts, ok",
    [
        ({"meta": _fit(True), "plain": _fit(True), "validate": _VALIDATE}, True),
        ({"meta": _fit(True), "plain": _fit(False), "validate": _VALIDATE}, False),
        ({"meta": {"error": "NonFiniteError: step 3"}, "plain": _fit(True), "validate": _VALIDATE}, False),
        ({"meta": _fit(True), "plain": _fit(True)}, False),  # validate never wrote a result
        ({"meta": _fit(True), "plain": _fit(True), "validate": {**_VALIDATE, "finite": False}}, False),
    ],
)
def test_the_report_fails_when_any_part_failed_or_was_not_finite(tmp_path, capsys, parts, ok):
    _write(tmp_path, **parts)
    assert gpu_smoke.report(tmp_path) == (0 if ok else 1)
    assert ("PASSED" if ok else "FAILED") in capsys.readouterr().out
