"""``benchmarks/smollm2_bootstrap.py`` on hand-written sweeps: 2 prompts x 5 weights (4 seen, 1 unseen).

Prompt "follows" has ``r = w`` and prompt "against" ``r = 1 - w``. A bootstrap draw of the two prompts is
{follows, follows} (probability 1/4: the mean follows ``w``, Spearman +1), {against, against} (1/4: -1) or one of
each (1/2: the mean is 0.5 at every weight, a constant side, so 0). On the one unseen weight ``w_k`` is constant,
so every correlation there is 0.
"""

import subprocess
import sys

from smollm2_artifacts import REPO, write_sweep_folder

SEEN = [(1.0, 0.0), (2 / 3, 1 / 3), (1 / 3, 2 / 3), (0.0, 1.0)]
UNSEEN = [(0.5, 0.5)]


def _folder(tmp_path, name, second_prompt_follows):
    """A run folder whose prompt "follows" has r = w and whose prompt "against" has r = 1 - w (or r = w)."""
    samples = []
    for w1, w2 in SEEN + UNSEEN:
        second = (w1, w2) if second_prompt_follows else (w2, w1)
        samples += [
            {"prompt": "follows", "w": [w1, w2], "completion": f"f{w1}", "rewards": {"a": w1, "b": w2}},
            {
                "prompt": "against",
                "w": [w1, w2],
                "completion": f"g{w1}",
                "rewards": dict(zip("ab", second, strict=True)),
            },
        ]
    return str(write_sweep_folder(tmp_path / name, SEEN, samples))


def _bootstrap(*pairs):
    script = REPO / "benchmarks" / "smollm2_bootstrap.py"
    args = [a for pair in pairs for a in ("--pair", *pair)]
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True)


def _rows(out):
    return [[c.strip() for c in line.strip("|").split("|")[2:]] for line in out.splitlines()[2:]]


def test_paired_draws_against_hand_worked_probabilities(tmp_path):
    mixed = _folder(tmp_path, "mixed", second_prompt_follows=False)
    steered = _folder(tmp_path, "steered", second_prompt_follows=True)
    done = _bootstrap((mixed, steered), (mixed, mixed), (steered, mixed))
    assert done.returncode == 0, done.stderr
    rows = _rows(done.stdout)
    # mixed: 0 as evaluated; +1 or -1 with probability 1/4 each, so the 5% and 95% quantiles are -1 and +1.
    # steered: +1 in every draw. The difference is 1 - (mixed's draw): 0, 1 or 2; steered is never below.
    for objective, row in zip("ab", rows[0:2], strict=True):
        assert row == [
            "seen (4)",
            objective,
            "0.00 [-1.00, 1.00]",
            "1.00 [1.00, 1.00]",
            "+1.00 [0.00, 2.00]",
            "1.00",
        ]
    for objective, row in zip(
        "ab", rows[2:4], strict=True
    ):  # one unseen weight: w_k constant, every correlation 0
        assert row == [
            "unseen (1)",
            objective,
            "0.00 [0.00, 0.00]",
            "0.00 [0.00, 0.00]",
            "+0.00 [0.00, 0.00]",
            "1.00",
        ]
    # A folder against itself: the draws are paired, so the difference is 0 in every draw although each side
    # spreads over [-1, 1]; unpaired draws would differ in about 5 of 8.
    assert rows[4] == [
        "seen (4)",
        "a",
        "0.00 [-1.00, 1.00]",
        "0.00 [-1.00, 1.00]",
        "+0.00 [0.00, 0.00]",
        "1.00",
    ]
    # The other way round, mixed >= steered (+1) only on the draws {follows, follows}: probability 1/4 (2000
    # draws: sd about 0.01).
    assert rows[8][:2] == ["seen (4)", "a"] and 0.22 <= float(rows[8][-1]) <= 0.28


def test_refuses_two_different_sweeps(tmp_path):
    mixed = _folder(tmp_path, "mixed", second_prompt_follows=False)
    other = _folder(tmp_path, "other", second_prompt_follows=True)
    front = tmp_path / "other" / "lightning_logs" / "version_0" / "frontier.csv"
    front.write_text(front.read_text().replace("0.0000,1.0000,1", "0.0000,1.0000,0"))  # (0, 1) now unseen
    done = _bootstrap((mixed, other))
    assert (
        done.returncode != 0
        and "must be evaluations of the same objectives, weights and prompts" in done.stderr
    )
