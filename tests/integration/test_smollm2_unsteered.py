"""``benchmarks/smollm2_unsteered.py`` on a hand-written sweep: 3 prompts x 5 weights (4 seen, 1 unseen)."""

import subprocess
import sys

from smollm2_artifacts import REPO, write_sweep_folder

SEEN = [(1.0, 0.0), (2 / 3, 1 / 3), (1 / 3, 2 / 3), (0.0, 1.0)]
UNSEEN = [(0.5, 0.5)]


def _run_folder(tmp_path):
    samples = []
    for w1, w2 in SEEN + UNSEEN:
        # follows w: r = w, a new text at each w;  ignores w: one text;  against w: r = 1 - w, a new text at each w
        samples += [
            {"prompt": "follows", "w": [w1, w2], "completion": f"f{w1}", "rewards": {"a": w1, "b": w2}},
            {"prompt": "ignores", "w": [w1, w2], "completion": "same", "rewards": {"a": 0.5, "b": 0.5}},
            {"prompt": "against", "w": [w1, w2], "completion": f"g{w1}", "rewards": {"a": w2, "b": w1}},
        ]
    return write_sweep_folder(tmp_path / "run", SEEN, samples)


def _unsteered(run):
    script = REPO / "benchmarks" / "smollm2_unsteered.py"
    return subprocess.run([sys.executable, str(script), str(run)], capture_output=True, text=True)


def test_splits_the_unsteered_prompts_into_ties_and_wrong_way(tmp_path):
    run = _run_folder(tmp_path)
    done = _unsteered(run)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    rows = [[c.strip() for c in line.strip("|").split("|")[1:]] for line in out.splitlines()[2:]]
    # Seen (4 weights): "follows" has Spearman +1 with 4 texts; "ignores" 0 (constant reward) with 1 text;
    # "against" -1 with 4 texts. So 1/3 steered (median 4 texts); 2 not (median of 1 and 4: 2.5), of which 1 has
    # <= 3 texts and 1 goes the wrong way; the same for both objectives.
    assert rows[0] == ["seen (4)", "a", "0.33", "4", "2", "2.5", "1", "1"]
    assert rows[1] == ["seen (4)", "b", "0.33", "4", "2", "2.5", "1", "1"]
    # Unseen (1 weight): a single weight gives no correlation (0), so no prompt steers; each has 1 text there.
    assert rows[2] == ["unseen (1)", "a", "0.00", "n/a", "3", "1", "3", "0"]
    assert rows[3] == ["unseen (1)", "b", "0.00", "n/a", "3", "1", "3", "0"]


def test_refuses_a_sweep_with_missing_pairs(tmp_path):
    run = _run_folder(tmp_path)
    samples = run / "lightning_logs" / "version_0" / "samples.jsonl"
    samples.write_text("\n".join(samples.read_text().splitlines()[:-1]) + "\n")
    done = _unsteered(run)
    assert done.returncode != 0 and "lacks 1 (prompt, w) pairs" in done.stderr


def test_refuses_a_weight_the_front_does_not_list(tmp_path):
    run = _run_folder(tmp_path)
    front = run / "lightning_logs" / "version_0" / "frontier.csv"
    front.write_text("\n".join(front.read_text().splitlines()[:-1]) + "\n")  # drops w = (0.5, 0.5)
    done = _unsteered(run)
    assert done.returncode != 0 and "w = [0.5, 0.5], which frontier.csv does not list" in done.stderr
