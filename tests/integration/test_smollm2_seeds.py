"""``benchmarks/smollm2_seeds.py`` on hand-written evaluation folders: a stage and two methods, two seeds each."""

import json
import subprocess
import sys

from smollm2_artifacts import REPO

NAMES = ("simplicity", "technicality")


def _summary(step, sp_seen, sp_unseen, hv, pu, frac, frac_seen, frac_unseen, median):
    """A summary.json as ParetoEvaluation writes it; each per-objective argument is a pair (one per objective)."""
    s = {
        "step": step,
        "val/hypervolume": hv,
        "val/pu": pu,
        "val/pu_seen": pu - 0.01,
        "val/pu_unseen": pu + 0.01,
        "val/max_gap": 0.1,
    }
    for k, n in enumerate(NAMES):
        values = {"spearman_seen": sp_seen, "spearman_unseen": sp_unseen, "prompt_steer_frac": frac,
                  "prompt_steer_frac_seen": frac_seen, "prompt_steer_frac_unseen": frac_unseen,
                  "prompt_steer_median": median}  # fmt: skip
        s |= {f"val/{key}/{n}": v[k] for key, v in values.items()}
    return s


def _folder(root, name, summary):
    logs = root / name / "lightning_logs" / "version_0"  # as a fit or validate run writes it
    logs.mkdir(parents=True)
    (logs / "summary.json").write_text(json.dumps(summary))
    return str(root / name)


def _run(*args):
    cmd = [sys.executable, str(REPO / "benchmarks" / "smollm2_seeds.py"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines()


def _row(lines, label, start=0):
    """The first table row with ``label`` at or after line ``start``, as its cells."""
    line = next(x for x in lines[start:] if x.startswith(f"| {label} |"))
    return [c.strip() for c in line.strip("|").split("|")][1:]


def test_seeds_means_and_the_improvement_lines(tmp_path):
    s0 = _folder(tmp_path, "stage_s0", _summary(0, (0.90, 0.95), (0.70, 0.75), 0.50, 0.35, (0.4, 0.5),
                                                (0.5, 0.6), (0.3, 0.4), (0.30, 0.40)))  # fmt: skip
    s1 = _folder(tmp_path, "stage_s1", _summary(0, (0.80, 0.85), (0.60, 0.65), 0.52, 0.33, (0.5, 0.5),
                                                (0.6, 0.6), (0.4, 0.4), (0.40, 0.40)))  # fmt: skip
    # Method A beats its stage on every metric in both seeds, and reaches the targets in seed 1 only.
    a0 = _folder(tmp_path, "a_s0", _summary(96, (0.95, 0.97), (0.90, 0.92), 0.53, 0.34, (0.7, 0.75),
                                            (0.85, 0.79), (0.75, 0.8), (0.6, 0.65)))  # fmt: skip
    a1 = _folder(tmp_path, "a_s1", _summary(96, (0.85, 0.90), (0.80, 0.70), 0.54, 0.32, (0.8, 0.8),
                                            (0.9, 0.8), (0.7, 0.7), (0.7, 0.7)))  # fmt: skip
    # Method B loses hypervolume to its stage in seed 1, and PU in seed 0 (higher is worse).
    b0 = _folder(tmp_path, "b_s0", _summary(96, (0.95, 0.97), (0.90, 0.92), 0.53, 0.36, (0.7, 0.75),
                                            (0.85, 0.79), (0.75, 0.8), (0.6, 0.65)))  # fmt: skip
    b1 = _folder(tmp_path, "b_s1", _summary(96, (0.85, 0.90), (0.80, 0.70), 0.51, 0.32, (0.8, 0.8),
                                            (0.9, 0.8), (0.7, 0.7), (0.7, 0.7)))  # fmt: skip
    out = _run("--stage", s0, s1, "--method", "A", a0, a1, "--method", "B", b0, b1)
    stage_at, a_at = out.index("### Stage alone"), out.index("### A")
    # Every seed, then mean ± sample std: |x - y| / sqrt(2) for two seeds.
    assert _row(out, "Spearman seen (simplicity)", stage_at) == ["0.90", "0.80", "0.85 ± 0.07"]
    assert _row(out, "PU (lower is better)", stage_at) == ["0.3500", "0.3300", "0.3400 ± 0.0141"]
    assert _row(out, "step", a_at) == ["96", "96", ""]
    assert _row(out, "prompts steered, unseen (technicality)", a_at) == ["0.80", "0.70", "0.75 ± 0.07"]
    assert _row(out, "median per-prompt Spearman (simplicity)", a_at) == ["0.60", "0.70", "0.65 ± 0.07"]
    side = out.index("### Mean ± std over 2 seeds")
    assert out[side + 2] == "| | stage | A | B |"
    assert _row(out, "hypervolume", side) == ["0.5100 ± 0.0141", "0.5350 ± 0.0071", "0.5200 ± 0.0141"]
    checks = out.index("### RL improves on its own stage in every seed (PU: lower is better)")
    assert _row(out, "Spearman unseen (technicality)", checks) == ["yes (2/2)", "yes (2/2)"]
    assert _row(out, "hypervolume", checks) == ["yes (2/2)", "no (1/2; not in seed 1)"]
    assert _row(out, "PU (lower is better)", checks) == ["yes (2/2)", "no (1/2; not in seed 0)"]
    assert _row(out, "prompts steered, seen (simplicity)", checks) == ["yes (2/2)", "yes (2/2)"]
    assert _row(out, "max gap (largest hole in the front)", a_at) == ["0.100", "0.100", "0.100 ± 0.000"]
    checked = [line.split("|")[1].strip() for line in out[checks:] if line.startswith("| ")]
    assert "step" not in checked and "max gap (largest hole in the front)" not in checked
    # Targets: seen >= 0.8 and unseen >= 0.7 for both objectives (A seed 0 has 0.79 seen for technicality).
    assert _row(out, "seeds", checks) == ["0/2", "1/2", "1/2"]


def test_positional_folders_and_summaries_without_a_metric(tmp_path):
    new = _folder(tmp_path, "new", _summary(96, (1.0, -1.0), (0.5, 1.0), 0.50, 0.30, (0.5, 0.5),
                                            (0.5, 0.5), (0.5, 0.5), (0.5, 0.5)))  # fmt: skip
    old = _folder(
        tmp_path, "old", {"step": 96, "val/hypervolume": 0.54, "val/pu": 0.34}
    )  # written before them
    out = _run(new, old)
    assert out[0] == "### runs"
    assert _row(out, "Spearman seen (technicality)") == ["-1.00", "n/a", "-1.00 (1 seed)"]
    assert _row(out, "hypervolume") == ["0.5000", "0.5400", "0.5200 ± 0.0283"]
    assert _row(out, "seeds") == ["n/a"]


def test_seeds_labels_the_columns_and_the_seeds_a_method_misses(tmp_path):
    # Seeds 0 and 2 of a stage and a method that loses hypervolume to its stage in seed 2 only.
    half, more = (0.5, 0.5), (0.6, 0.6)
    stage = [_folder(tmp_path, f"stage_s{s}", _summary(0, (0.9, 0.9), (0.8, 0.8), 0.50, 0.35, *[half] * 4))
             for s in (0, 2)]  # fmt: skip
    a = [_folder(tmp_path, f"a_s{s}", _summary(96, (0.95, 0.95), (0.9, 0.9), hv, 0.34, *[more] * 4))
         for s, hv in ((0, 0.51), (2, 0.49))]  # fmt: skip
    out = _run("--stage", *stage, "--method", "A", *a, "--seeds", "0", "2")
    assert out[out.index("### A") + 2] == "| | seed 0 | seed 2 | mean ± std |"
    assert f"seed 2: {a[1]}" in out
    checks = out.index("### RL improves on its own stage in every seed (PU: lower is better)")
    assert _row(out, "hypervolume", checks) == ["no (1/2; not in seed 2)"]
    cmd = [sys.executable, str(REPO / "benchmarks" / "smollm2_seeds.py"), "--stage", *stage, "--seeds", "0"]
    bad = subprocess.run(cmd, capture_output=True, text=True)
    assert bad.returncode != 0 and "--seeds names 1 seeds" in bad.stderr
