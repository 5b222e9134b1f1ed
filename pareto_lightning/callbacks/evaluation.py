"""``ParetoEvaluation``: the evaluation sweep over preferences, reported to the logger and to files.

The algorithm module's ``validation_step`` generates greedy and sampled completions for each (prompt, ``w``) pair
of the data module's sweep and returns their rewards; this callback turns them into Table-1 numbers, front metrics,
``frontier.csv``, ``pareto_front.png`` and ``samples.jsonl``.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from typing import Any, Literal

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from torch import Tensor

from pareto_lightning.callbacks.front_summary import KnownFront, per_weight_means, summarize_front
from pareto_lightning.callbacks.plotting import pareto_figure
from pareto_lightning.metrics.functional import shortfall


class ParetoEvaluation(Callback):
    """Aggregates the evaluation sweep and reports it.

    Per evaluation weight ``w``: the mean reward vector and the preference-utility shortfall (paper Eq. 1, lower is
    better), for greedy and sampled completions separately. Front metrics (hypervolume, Spearman correlation of
    ``w_k`` with ``r_k``, the largest gap between neighbouring points, and with a known front the PU regret, HV
    ratio and its ceiling) use the greedy points by default: on a non-convex front the *mean* reward of a stochastic
    policy can lie beyond the front (a 50/50 mix of two corners averages (0.5, 0.5)), so sampled means would flatter
    a policy that merely randomizes between extremes.

    Logged: ``val/pu``, ``val/pu_seen``, ``val/pu_unseen``, ``val/hypervolume``, ``val/spearman``, ``val/max_gap``
    (+ ``val/pu_regret``, ``val/hv_ratio``, ``val/hv_ceiling`` with a known front), the same under ``val_sampled/``,
    the Pareto figure and a text table of samples. Files in the run's log directory: ``frontier.csv`` (columns
    ``w_1..w_K, seen, r_1..r_K, pu``), ``pareto_front.png``, ``samples.jsonl`` (the greedy completions of rank 0's
    share of the sweep; the metrics above cover every rank), ``summary.json`` (the scalars); each evaluation
    also keeps its CSV as ``evaluations/step_<n>.csv``.

    Args:
        mu: smoothing of the shortfall (the paper: 0.1).
        ideal_point: utopia point ``z*`` of the shortfall (1.0 for rewards in [0, 1]).
        ref_point: hypervolume reference point. Default -0.1: for rewards in [0, 1] a reference at 0 would make
            corner points such as (1, 0) add no volume, so it sits one tenth of the range below the worst value
            (BoTorch's nadir - 0.1 * range rule).
        task: a task with a known front (``LexiconTask``) for regret and HV ratio; None for real reward models.
        front_from: ``"greedy"`` (default) or ``"sampled"`` points for the front metrics.
        num_logged_samples: samples per evaluation in the TensorBoard text table.

    Example:
        >>> ParetoEvaluation(ref_point=-0.1).front_from
        'greedy'
    """

    def __init__(
        self,
        mu: float = 0.1,
        ideal_point: float | Sequence[float] = 1.0,
        ref_point: float | Sequence[float] = -0.1,
        task: KnownFront | None = None,
        front_from: Literal["greedy", "sampled"] = "greedy",
        num_logged_samples: int = 8,
    ) -> None:
        if not mu > 0:
            raise ValueError(f"`ParetoEvaluation.mu` must be > 0; got {mu}.")
        if front_from not in ("greedy", "sampled"):
            raise ValueError(
                f"`ParetoEvaluation.front_from` must be 'greedy' or 'sampled'; got {front_from!r}."
            )
        self.mu, self.task, self.front_from = mu, task, front_from
        self.ideal_point = torch.as_tensor(ideal_point, dtype=torch.float64)
        self.ref_point = torch.as_tensor(ref_point, dtype=torch.float64)
        self.num_logged_samples = num_logged_samples
        self.last_summary: dict[str, Any] | None = None
        self._reset()

    def _reset(self) -> None:
        self._index: list[Tensor] = []
        self._greedy: list[Tensor] = []
        self._sampled: list[Tensor] = []
        self._samples: list[dict[str, Any]] = []

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._reset()

    on_test_epoch_start = on_validation_epoch_start

    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:
        if not outputs:
            return
        self._index.append(outputs["weight_index"].cpu())
        self._greedy.append(outputs["greedy"].double().cpu())  # [b, K]
        self._sampled.append(outputs["sampled"].double().cpu())  # [b, G, K]
        names = getattr(getattr(pl_module, "policy", None), "objective_names", None)
        for i, (p, c) in enumerate(zip(outputs["prompts"], outputs["completions"], strict=True)):
            r = outputs["greedy"][i].tolist()
            self._samples.append({
                "prompt": p, "w": [round(x, 6) for x in outputs["weights"][i].tolist()], "completion": c,
                "rewards": dict(zip(names, r, strict=True)) if names else r,
            })  # fmt: skip

    on_test_batch_end = on_validation_batch_end

    @property
    def _other(self) -> str:
        return "sampled" if self.front_from == "greedy" else "greedy"

    def _shortfall(self, rewards: Tensor, weights: Tensor) -> Tensor:
        return shortfall(rewards, weights, self.ideal_point, self.mu)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or not self._index:
            return
        dm = trainer.datamodule
        weights, seen = dm.eval_weights.double(), dm.eval_seen
        m = len(weights)
        index = torch.cat(self._index)  # [N]
        greedy, sampled = torch.cat(self._greedy), torch.cat(self._sampled)  # [N, K], [N, G, K]
        w_rows = weights[index]  # [N, K]
        g = sampled.shape[1]
        stats = {
            "greedy": per_weight_means(index, greedy, m)[0],
            "greedy_pu": per_weight_means(index, self._shortfall(greedy, w_rows), m)[0],
            "sampled": per_weight_means(index, sampled.mean(1), m)[0],
            "sampled_pu": per_weight_means(index, self._shortfall(sampled, w_rows[:, None]).mean(1), m)[0],
            "count": per_weight_means(index, torch.ones(len(index), dtype=torch.float64), m)[0],
        }
        # Each rank saw its share of the sweep: sum the per-weight statistics over ranks.
        device = pl_module.device
        stats = {k: trainer.strategy.reduce(v.to(device), reduce_op="sum").cpu() for k, v in stats.items()}
        count = stats["count"].clamp_min(1)
        means = {
            k: stats[k] / (count[:, None] if stats[k].dim() == 2 else count) for k in stats if k != "count"
        }
        kw = dict(ref_point=self.ref_point, task=self.task, mu=self.mu, ideal_point=self.ideal_point)
        front_key = self.front_from
        other = self._other
        main = summarize_front(weights, seen, means[front_key], means[f"{front_key}_pu"], **kw)
        side = summarize_front(weights, seen, means[other], means[f"{other}_pu"], **kw)
        main_prefix, side_prefix = "val", f"val_{other}"
        for name, value in main.scalars.items():
            pl_module.log(f"{main_prefix}/{name}", value, sync_dist=False, rank_zero_only=False)
        for name, value in side.scalars.items():
            pl_module.log(f"{side_prefix}/{name}", value, sync_dist=False, rank_zero_only=False)
        self.last_summary = {"weights": weights, "seen": seen, "greedy": means["greedy"], "sampled": means["sampled"],
                             "pu": means[f"{front_key}_pu"], "scalars": main.scalars, "side_scalars": side.scalars,
                             "num_generations": g}  # fmt: skip
        # ``trainer.log_dir`` broadcasts from rank 0 under a distributed strategy, so every rank asks for it.
        log_dir = trainer.log_dir or trainer.default_root_dir
        if trainer.is_global_zero:
            self._write(trainer, pl_module, log_dir)

    on_test_epoch_end = on_validation_epoch_end

    # ---------------------------------------------------------------------------------------------- outputs
    @staticmethod
    def evaluated_step(trainer: pl.Trainer, pl_module: pl.LightningModule) -> int:
        """The training step of the weights evaluated: ``validate``/``test`` of a checkpoint report its step
        (their ``trainer.global_step`` restarts at 0)."""
        loaded = getattr(pl_module, "checkpoint_step", None)
        return trainer.global_step if trainer.state.fn == "fit" or loaded is None else loaded

    def _write(self, trainer: pl.Trainer, pl_module: pl.LightningModule, log_dir: str) -> None:
        s = self.last_summary
        step = self.evaluated_step(trainer, pl_module)
        os.makedirs(os.path.join(log_dir, "evaluations"), exist_ok=True)
        k = s["weights"].shape[1]
        points = s[self.front_from]
        header = [f"w_{i + 1}" for i in range(k)] + ["seen"] + [f"r_{i + 1}" for i in range(k)] + ["pu"]
        rows = [
            [f"{x:.4f}" for x in w] + [int(sn)] + [f"{x:.6f}" for x in r] + [f"{p:.6f}"]
            for w, sn, r, p in zip(s["weights"].tolist(), s["seen"].tolist(), points.tolist(), s["pu"].tolist(),
                                   strict=True)
        ]  # fmt: skip
        for path in (os.path.join(log_dir, "frontier.csv"),
                     os.path.join(log_dir, "evaluations", f"step_{step:06d}.csv")):  # fmt: skip
            with open(path, "w", newline="") as fh:
                writer = csv.writer(fh)
                writer.writerow(header)
                writer.writerows(rows)
        summary = {"step": step}
        summary.update({f"val/{k}": v for k, v in s["scalars"].items()})
        summary.update({f"val_{self._other}/{k}": v for k, v in s["side_scalars"].items()})
        with open(os.path.join(log_dir, "summary.json"), "w") as fh:
            json.dump(summary, fh, indent=1)
        with open(os.path.join(log_dir, "samples.jsonl"), "w") as fh:
            for row in self._samples:
                fh.write(json.dumps(row) + "\n")
        names = tuple(getattr(pl_module.policy, "objective_names", ("r_1", "r_2"))[:2])
        exact = self.task.exact_front() if self.task is not None else None
        sc = s["scalars"]
        title = f"step {step}: PU {sc['pu']:.3f}, HV {sc['hypervolume']:.3f}"
        fig = pareto_figure(s["weights"], s["greedy"], s["sampled"], exact, names, title)
        fig.savefig(os.path.join(log_dir, "pareto_front.png"))
        experiment = getattr(trainer.logger, "experiment", None)
        if hasattr(experiment, "add_figure"):
            experiment.add_figure("val/pareto_front", fig, step)
            table = ["| w | prompt | completion | rewards |", "|---|---|---|---|"]
            step = max(1, len(self._samples) // max(1, self.num_logged_samples))
            for row in self._samples[::step][: self.num_logged_samples]:
                table.append(f"| {row['w']} | {row['prompt']} | {row['completion']} | {row['rewards']} |")
            experiment.add_text("val/samples", "\n".join(table), step)
        import matplotlib.pyplot as plt

        plt.close(fig)
