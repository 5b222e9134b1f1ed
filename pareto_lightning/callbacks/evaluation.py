"""``ParetoEvaluation``: the evaluation sweep over preferences, reported to the logger and to files.

The algorithm module's ``validation_step`` generates greedy and sampled completions for each (prompt, ``w``) pair
of the data module's sweep and returns their raw rewards (a ``SweepBatch``); this callback accumulates them in
:class:`~pareto_lightning.metrics.PreferenceSweep` metrics (summed across ranks), and turns them into Table-1
numbers, front metrics, ``frontier.csv``, ``pareto_front.png`` and ``samples.jsonl``.
"""

from __future__ import annotations

import copy
import csv
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities.rank_zero import rank_zero_warn
from torch import Tensor

from pareto_lightning.callbacks.front_summary import KnownFront, summarize_front
from pareto_lightning.callbacks.plotting import pareto_figure
from pareto_lightning.config_errors import quote_keys
from pareto_lightning.data.contract import PreferenceData, preference_data
from pareto_lightning.metrics import PreferenceSweep, PromptSweep
from pareto_lightning.rollout import SweepBatch
from pareto_lightning.scalarization.functional import mu_problem

_KEY = "trainer.callbacks[i].init_args"  # the ParetoEvaluation entry of the callbacks list


@dataclass
class SweepSummary:
    """What one evaluation found (``ParetoEvaluation.last_summary``)."""

    step: int  # the training step of the weights evaluated
    weights: Tensor  # [M, K] evaluation weights
    seen: Tensor  # [M] bool, in the training support
    greedy: Tensor  # [M, K] mean reward of the greedy completions per weight
    sampled: Tensor  # [M, K] mean reward of the sampled completions per weight
    pu: Tensor  # [M] shortfall per weight of the points the front metrics use (lower is better)
    prompt_points: Tensor  # [P, M, K] the front metrics' points per (prompt, weight), NaN where not evaluated
    scalars: dict[str, float]  # logged as val/<name>
    side_scalars: dict[str, float]  # the other points' metrics, logged as val_<other>/<name>
    num_generations: int  # sampled completions per (prompt, w)
    yardstick: str  # the scale the rewards were measured on



def _sweep_data(trainer: pl.Trainer) -> PreferenceData:
    """The data module that holds the evaluation sweep (its prompts and weights)."""
    data = preference_data(trainer)
    if data is None:
        raise ValueError(
            "ParetoEvaluation sweeps the data module's eval_prompts x eval_weights; give the trainer a data module "
            "(`data:` in the config, or `datamodule=` to fit/validate/test)."
        )
    return data

class ParetoEvaluation(Callback):
    """Aggregates the evaluation sweep and reports it.

    Per evaluation weight ``w``: the mean reward vector and the preference-utility shortfall (paper Eq. 1, lower is
    better), for greedy and sampled completions separately. Front metrics (hypervolume, Spearman correlation of
    ``w_k`` with ``r_k``, the largest gap between neighbouring points, and with a known front the PU regret, HV
    ratio and its ceiling) and per-prompt steering use the greedy points by default: on a non-convex front the
    *mean* reward of a stochastic policy can lie beyond the front (a 50/50 mix of two corners averages (0.5, 0.5)),
    so sampled means would flatter a policy that merely randomizes between extremes.

    Per-prompt steering: the front metrics read one point per weight, averaged over the evaluation prompts, which
    can steer while single prompts do not. ``val/prompt_steer_frac/<name>`` is the share of evaluation prompts whose
    own Spearman correlation between ``w_k`` and ``r_k`` over the sweep is ``> prompt_steer_threshold``,
    ``val/prompt_steer_median/<name>`` the median of those correlations (a prompt whose ``r_k`` does not change over
    the sweep counts as 0: not steering).

    Logged: ``val/pu``, ``val/pu_seen``, ``val/pu_unseen``, ``val/hypervolume``, ``val/spearman`` (the mean over
    objectives; ``val/spearman_seen``, ``val/spearman_unseen`` over the seen or unseen weights), ``val/max_gap``,
    per objective ``val/spearman/<name>``, ``val/prompt_steer_frac/<name>``, ``val/prompt_steer_median/<name>`` and
    their ``_seen``/``_unseen`` versions (``val/spearman_unseen/<name>``; NaN where the sweep has no such weight)
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
        yardstick: the scale rewards are measured on, fixed for the whole run so that evaluations (and the
            checkpoint selection that follows ``val/pu``) compare like with like. ``"frozen_normalizer"``
            (default): the module's reward normalizer with its statistics frozen at the first evaluation that
            finds any (kept in checkpoints; raw rewards before that, and always without a normalizer);
            ``"raw"``: the reward functions' own scale. A normalizer that keeps learning (``MaxNormalizer``'s running
            maximum) would otherwise score the same policy differently at every evaluation.
        prompt_steer_threshold: a prompt steers objective ``k`` when its own Spearman over the sweep is above this
            (default 0.5), a number in ``[-1, 1)``.

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
        yardstick: Literal["frozen_normalizer", "raw"] = "frozen_normalizer",
        prompt_steer_threshold: float = 0.5,
    ) -> None:
        key = _KEY
        problems = []
        if mu_problem(mu) is not None:
            problems += quote_keys([mu_problem(mu)], key)
        if front_from not in ("greedy", "sampled"):
            problems.append(f"`{key}.front_from` must be 'greedy' or 'sampled'; got {front_from!r}.")
        if yardstick not in ("frozen_normalizer", "raw"):
            problems.append(f"`{key}.yardstick` must be 'frozen_normalizer' or 'raw'; got {yardstick!r}.")
        if isinstance(prompt_steer_threshold, bool) or not -1.0 <= prompt_steer_threshold < 1.0:
            problems.append(
                f"`{key}.prompt_steer_threshold` must be in [-1, 1); got {prompt_steer_threshold!r}."
            )
        if problems:
            raise ValueError("invalid ParetoEvaluation configuration:\n  " + "\n  ".join(problems))
        self.mu, self.task, self.front_from, self.yardstick = mu, task, front_from, yardstick
        self.ideal_point = torch.as_tensor(ideal_point, dtype=torch.float64)
        self.ref_point = torch.as_tensor(ref_point, dtype=torch.float64)
        self.num_logged_samples = num_logged_samples
        self.prompt_steer_threshold = float(prompt_steer_threshold)
        self.last_summary: SweepSummary | None = None
        # The frozen normalizer (a copy of the module's, statistics fixed) and where it was frozen; its state is
        # kept in checkpoints so a resumed run or a `validate` of a checkpoint measures on the same scale.
        self._frozen: torch.nn.Module | None = None
        self._frozen_state: dict[str, Any] | None = None
        self._frozen_step: int | None = None
        self._sweeps: dict[str, PreferenceSweep] = {}
        self._prompt_sweeps: dict[str, PromptSweep] = {}
        self._samples: list[dict[str, Any]] = []
        self._num_generations = 0
        self._warned_partial = False

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Check the points against ``K`` of the evaluation weights now, not at the first evaluation."""
        k = _sweep_data(trainer).eval_weights.shape[-1]
        problems = [
            f"`{_KEY}.{name}` must be one number or {k} (one per objective), all finite; got {point.tolist()}."
            for name, point in (("ref_point", self.ref_point), ("ideal_point", self.ideal_point))
            if point.numel() not in (1, k) or point.dim() > 1 or not torch.isfinite(point).all()
        ]
        if problems:
            raise ValueError("invalid ParetoEvaluation configuration:\n  " + "\n  ".join(problems))

    # ------------------------------------------------------------------------------------------- yardstick
    def _fix_yardstick(self, pl_module: pl.LightningModule, step: int) -> None:
        normalizer = getattr(getattr(pl_module, "reward", None), "normalizer", None)
        if self.yardstick != "frozen_normalizer" or normalizer is None or self._frozen is not None:
            return
        if self._frozen_state is None and int(getattr(normalizer, "num_updates", 0)) == 0:
            return  # no statistics yet: raw rewards until an evaluation finds some
        frozen = copy.deepcopy(normalizer).eval()
        if self._frozen_state is not None:  # from a checkpoint
            frozen.load_state_dict(self._frozen_state)
        else:
            self._frozen_step = step
        self._frozen = frozen.requires_grad_(False)

    def _measure(self, raw: Tensor) -> Tensor:
        if self._frozen is None:
            return raw.double()
        flat = raw.reshape(-1, raw.shape[-1]).float()  # [N, K]
        return (
            self._frozen.normalize(flat.to(next(iter(self._frozen.buffers())).device))
            .view(raw.shape)
            .double()
        )

    @property
    def yardstick_description(self) -> str:
        """In words, the scale of the last evaluation's rewards (written to ``summary.json``)."""
        if self._frozen is None:
            return "raw rewards"
        return f"normalized, statistics frozen at step {self._frozen_step}"

    def state_dict(self) -> dict[str, Any]:
        state = self._frozen.state_dict() if self._frozen is not None else self._frozen_state
        return {"frozen_normalizer": state, "frozen_step": self._frozen_step}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._frozen, self._frozen_state = None, state_dict.get("frozen_normalizer")
        self._frozen_step = state_dict.get("frozen_step")

    # ---------------------------------------------------------------------------------------------- the sweep
    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._fix_yardstick(pl_module, self.evaluated_step(trainer, pl_module))
        data = _sweep_data(trainer)
        weights = data.eval_weights
        self._sweeps = {
            name: PreferenceSweep(weights, mu=self.mu, ideal_point=self.ideal_point).to(pl_module.device)
            for name in ("greedy", "sampled")
        }
        size = (len(data.eval_prompts), *weights.shape)  # P, M, K
        self._prompt_sweeps = {name: PromptSweep(*size).to(pl_module.device) for name in self._sweeps}
        self._samples = []

    on_test_epoch_start = on_validation_epoch_start

    def on_validation_batch_end(
        self, trainer, pl_module, outputs: SweepBatch, batch, batch_idx, dataloader_idx=0
    ) -> None:
        if outputs is None:
            return
        self._sweeps["greedy"].update(outputs.weight_index, self._measure(outputs.greedy))  # [b, K]
        self._sweeps["sampled"].update(outputs.weight_index, self._measure(outputs.sampled))  # [b, G, K]
        # The data module's sweep batches carry each pair's prompt index next to its weight index.
        for name, rewards in (("greedy", outputs.greedy), ("sampled", outputs.sampled)):  # [b, K], [b, G, K]
            sweep = self._prompt_sweeps[name]
            sweep.update(batch["prompt_index"], outputs.weight_index, self._measure(rewards))
        self._num_generations = outputs.sampled.shape[1]
        names = getattr(getattr(pl_module, "policy", None), "objective_names", None)
        for i, (p, c) in enumerate(zip(outputs.prompts, outputs.completions, strict=True)):
            r = outputs.greedy[i].tolist()
            self._samples.append({
                "prompt": p, "w": [round(x, 6) for x in outputs.weights[i].tolist()], "completion": c,
                "rewards": dict(zip(names, r, strict=True)) if names else r,
            })  # fmt: skip

    on_test_batch_end = on_validation_batch_end

    @property
    def _other(self) -> str:
        return "sampled" if self.front_from == "greedy" else "greedy"

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or not self._sweeps:
            return
        data = _sweep_data(trainer)
        weights, seen = data.eval_weights.double(), data.eval_seen
        means = {name: sweep.compute() for name, sweep in self._sweeps.items()}  # summed over ranks
        per_prompt = {name: sweep.compute().cpu() for name, sweep in self._prompt_sweeps.items()}  # [P, M, K]
        count = means["greedy"].count.cpu()  # [M] rows per weight
        # A partial sweep (`limit_val_batches`, `fast_dev_run`): the metrics cover the weights evaluated.
        done = count > 0  # [M]
        if not (count == count.max()).all():
            self._warn_partial(int(done.sum()), len(count), trainer)
        weights, seen = weights[done], seen[done]
        means = {n: m._replace(points=m.points.cpu()[done], pu=m.pu.cpu()[done]) for n, m in means.items()}
        per_prompt = {n: p[:, done] for n, p in per_prompt.items()}  # [P, M', K]
        names = getattr(getattr(pl_module, "policy", None), "objective_names", None)
        kw = dict(ref_point=self.ref_point, task=self.task, mu=self.mu, ideal_point=self.ideal_point,
                  names=names, steer_threshold=self.prompt_steer_threshold)  # fmt: skip
        fronts = {n: summarize_front(weights, seen, m.points, m.pu, prompt_points=per_prompt[n], **kw)
                  for n, m in means.items()}  # fmt: skip
        main_m, main, side = means[self.front_from], fronts[self.front_from], fronts[self._other]
        for name, value in main.scalars.items():
            pl_module.log(f"val/{name}", value, sync_dist=False, rank_zero_only=False)
        for name, value in side.scalars.items():
            pl_module.log(f"val_{self._other}/{name}", value, sync_dist=False, rank_zero_only=False)
        self.last_summary = SweepSummary(
            step=self.evaluated_step(trainer, pl_module), weights=weights, seen=seen,
            greedy=means["greedy"].points, sampled=means["sampled"].points, pu=main_m.pu,
            prompt_points=per_prompt[self.front_from],
            scalars=main.scalars, side_scalars=side.scalars, num_generations=self._num_generations,
            yardstick=self.yardstick_description,
        )  # fmt: skip
        self._sweeps, self._prompt_sweeps = {}, {}
        # ``trainer.log_dir`` broadcasts from rank 0 under a distributed strategy, so every rank asks for it.
        log_dir = trainer.log_dir or trainer.default_root_dir
        if trainer.is_global_zero:
            self._write(trainer, pl_module, log_dir)

    on_test_epoch_end = on_validation_epoch_end

    def _warn_partial(self, evaluated: int, total: int, trainer: pl.Trainer) -> None:
        if not self._warned_partial:
            rank_zero_warn(
                f"the evaluation sweep ran partly ({evaluated} of {total} evaluation weights, some perhaps on fewer "
                f"prompts; `trainer.limit_val_batches`={trainer.limit_val_batches}): its metrics cover the weights "
                "evaluated, so they do not compare with a full sweep's."
            )
        self._warned_partial = True

    # ---------------------------------------------------------------------------------------------- outputs
    @staticmethod
    def evaluated_step(trainer: pl.Trainer, pl_module: pl.LightningModule) -> int:
        """The training step of the weights evaluated: ``validate``/``test`` of a checkpoint report its step
        (their ``trainer.global_step`` restarts at 0)."""
        loaded = getattr(pl_module, "checkpoint_step", None)
        return trainer.global_step if trainer.state.fn == "fit" or loaded is None else loaded

    def _write(self, trainer: pl.Trainer, pl_module: pl.LightningModule, log_dir: str) -> None:
        s = self.last_summary
        assert s is not None  # set just before, in on_validation_epoch_end
        os.makedirs(os.path.join(log_dir, "evaluations"), exist_ok=True)
        k = s.weights.shape[1]
        points = s.greedy if self.front_from == "greedy" else s.sampled
        header = [f"w_{i + 1}" for i in range(k)] + ["seen"] + [f"r_{i + 1}" for i in range(k)] + ["pu"]
        rows = [
            [f"{x:.4f}" for x in w] + [int(sn)] + [f"{x:.6f}" for x in r] + [f"{p:.6f}"]
            for w, sn, r, p in zip(s.weights.tolist(), s.seen.tolist(), points.tolist(), s.pu.tolist(), strict=True)
        ]  # fmt: skip
        for path in (os.path.join(log_dir, "frontier.csv"),
                     os.path.join(log_dir, "evaluations", f"step_{s.step:06d}.csv")):  # fmt: skip
            with open(path, "w", newline="") as fh:
                writer = csv.writer(fh)
                writer.writerow(header)
                writer.writerows(rows)
        summary: dict[str, Any] = {"step": s.step, "yardstick": s.yardstick}
        summary.update({f"val/{k}": v for k, v in s.scalars.items()})
        summary.update({f"val_{self._other}/{k}": v for k, v in s.side_scalars.items()})
        with open(os.path.join(log_dir, "summary.json"), "w") as fh:
            json.dump(summary, fh, indent=1)
        with open(os.path.join(log_dir, "samples.jsonl"), "w") as fh:
            for row in self._samples:
                fh.write(json.dumps(row) + "\n")
        names = tuple(getattr(pl_module.policy, "objective_names", ("r_1", "r_2"))[:2])
        exact = self.task.exact_front() if self.task is not None else None
        title = f"step {s.step}: PU {s.scalars['pu']:.3f}, HV {s.scalars['hypervolume']:.3f}"
        fig = pareto_figure(s.weights, s.greedy, s.sampled, exact, names, title)
        fig.savefig(os.path.join(log_dir, "pareto_front.png"))
        experiment = getattr(trainer.logger, "experiment", None)
        if hasattr(experiment, "add_figure"):
            experiment.add_figure("val/pareto_front", fig, s.step)
            table = ["| w | prompt | completion | rewards |", "|---|---|---|---|"]
            stride = max(1, len(self._samples) // max(1, self.num_logged_samples))
            for row in self._samples[::stride][: self.num_logged_samples]:
                table.append(f"| {row['w']} | {row['prompt']} | {row['completion']} | {row['rewards']} |")
            experiment.add_text("val/samples", "\n".join(table), s.step)
        import matplotlib.pyplot as plt

        plt.close(fig)

__all__ = [
    "ParetoEvaluation",
    "SweepSummary",
]
