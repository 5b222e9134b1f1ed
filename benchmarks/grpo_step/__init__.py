"""Parts of ``benchmarks/bench_grpo_step.py``: one GRPO step timed three ways, cell by cell.

* :mod:`.workload` - the grid of settings (:class:`~.workload.Cell`) and the per-step work they share;
* :mod:`.models` - the two model sizes, written to folders that every side loads from;
* :mod:`.measure` - clocks and the summary statistics (pure functions);
* :mod:`.ours` - ``GRPOModule`` under a Lightning ``Trainer``;
* :mod:`.trl_side` - TRL's ``GRPOTrainer``;
* :mod:`.bare` - the limit: a plain PyTorch loop doing the same work;
* :mod:`.phases` - where the time of our step goes;
* :mod:`.report` - the printed tables and the JSON record.
"""
