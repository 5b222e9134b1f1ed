"""``benchmarks/smollm2_seeds.py`` on two hand-written evaluation folders."""

import json
import subprocess
import sys

from smollm2_artifacts import REPO


def _folder(root, name, rows, hv, pu):
    logs = root / name / "lightning_logs" / "version_0"
    logs.mkdir(parents=True)
    lines = ["w_1,w_2,seen,r_1,r_2,pu"] + [f"{w},{1 - w},1,{r1},{r2},0.5" for w, r1, r2 in rows]
    (logs / "frontier.csv").write_text("\n".join(lines) + "\n")
    (logs / "summary.json").write_text(json.dumps({"val/hypervolume": hv, "val/pu": pu}))
    return str(root / name)


def test_per_seed_rows_and_mean_std(tmp_path):
    # Seed a: r_1 rises with w_1 (Spearman 1); r_2 falls as w_2 = 1 - w_1 rises (-1).
    # Seed b: r_1 ranks 1, 3, 2 against w_1 ranks 1, 2, 3 (Spearman 1 - 6 * 2 / (3 * 8) = 0.5); r_2 rises with w_2 (1).
    a = _folder(tmp_path, "a", [(0.0, 0.1, 0.7), (0.5, 0.2, 0.8), (1.0, 0.3, 0.9)], hv=0.50, pu=0.30)
    b = _folder(tmp_path, "b", [(0.0, 0.1, 0.9), (0.5, 0.3, 0.5), (1.0, 0.2, 0.1)], hv=0.54, pu=0.34)
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "smollm2_seeds.py"), a, b],
                         capture_output=True, text=True, check=True).stdout.splitlines()  # fmt: skip
    assert out[1] == f"1.00 | -1.00 | 0.5000 | 0.3000 | {a}"
    assert out[2] == f"0.50 | 1.00 | 0.5400 | 0.3400 | {b}"
    # means 0.75, 0, 0.52, 0.32; sample std |x - y| / sqrt(2): 0.35, 1.41, 0.0283, 0.0283
    assert out[3] == "0.75 ± 0.35 | 0.00 ± 1.41 | 0.5200 ± 0.0283 | 0.3200 ± 0.0283 | mean ± std over 2"
