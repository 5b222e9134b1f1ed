"""``benchmarks/smollm2_before_after.py``'s sweep table on hand-written evaluations."""

import torch
from smollm2_before_after import own_spearman, sweep_table


def test_sweep_table_prints_two_decimal_weights_and_the_split_rows_it_has():
    w = torch.tensor([[1.0, 0.0], [0.95, 0.05], [0.0, 1.0]], dtype=torch.float64)
    r0 = torch.tensor([[0.6, 0.5], [0.6, 0.5], [0.6, 0.5]], dtype=torch.float64)  # the base: constant
    r1 = torch.tensor([[0.8, 0.3], [0.7, 0.4], [0.5, 0.6]], dtype=torch.float64)  # follows w
    old = {"val/hypervolume": 0.48, "val/pu": 0.36}  # written before the split keys existed
    new = {"val/hypervolume": 0.52, "val/pu": 0.34, "val/spearman_unseen/a": 1.0, "val/spearman_unseen/b": 1.0,
           "val/prompt_steer_frac/a": 0.75, "val/prompt_steer_frac/b": 0.5}  # fmt: skip
    lines = sweep_table(["a", "b"], (w, r0, old), (w, r1, new)).splitlines()
    assert lines[3] == "| (0.95, 0.05) | 0.600 | 0.500 | 0.700 | 0.400 |"
    assert "| Spearman(w_a, r_a) | 0.00 | 1.00 |" in lines  # constant: 0
    assert "| hypervolume | 0.4800 | 0.5200 |" in lines
    assert not any("prompts steered" in line for line in lines)  # only one side has it
    lines = sweep_table(["a", "b"], (w, r0, new), (w, r1, new)).splitlines()
    assert (
        "| prompts steered (a) | 0.75 | 0.75 |" in lines
        and "| Spearman, unseen weights (b) | 1.00 | 1.00 |" in lines
    )


def test_own_spearman_reads_each_prompt_of_a_sweep_in_any_row_order():
    def row(prompt, w, a, b):
        return {"prompt": prompt, "w": w, "completion": "", "rewards": {"a": a, "b": b}}

    # "up" follows w on both objectives (+1, +1); "flat" keeps r_a constant (0 by convention) and ranks r_b
    # 1, 3, 2 against w_b = 0, 0.5, 1: d = (0, 1, 1), 1 - 6 * 2 / (3 * 8) = 0.5.
    samples = [
        row("up", [1.0, 0.0], 0.9, 0.1),
        row("flat", [0.5, 0.5], 0.5, 0.4),
        row("up", [0.0, 1.0], 0.1, 0.9),
        row("flat", [1.0, 0.0], 0.5, 0.2),
        row("up", [0.5, 0.5], 0.5, 0.5),
        row("flat", [0.0, 1.0], 0.5, 0.3),
    ]
    rho = own_spearman(samples)
    assert rho["up"] == [1.0, 1.0]
    assert rho["flat"][0] == 0.0 and abs(rho["flat"][1] - 0.5) < 1e-12
