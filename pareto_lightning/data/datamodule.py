"""``PreferencePromptDataModule``: prompt batches, each with the preference it is trained under.

Training batches are assembled when the loop *consumes* them (``on_before_batch_transfer``), not when the
dataloader prefetches them, so the module's state (prompt order, preference sampler RNG, the preference held for
the current task) is exactly what a checkpoint saved after step ``t`` needs to continue with step ``t + 1``.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from pareto_lightning.data.contract import PreferenceSchedule, ScheduleError
from pareto_lightning.data.sources import PromptSource
from pareto_lightning.data.streams import TRAIN_TICK, EvalShard, Ticks, eval_batch_sizes, resolve_eval_weights
from pareto_lightning.preferences import (
    DirichletPreferenceSampler,
    mirrored_pairs,
    simplex_grid,
    split_seen_unseen,
)

log = logging.getLogger(__name__)


class PreferencePromptDataModule(pl.LightningDataModule):
    """Prompt batches with preferences drawn from ``Dirichlet(alpha)`` over a grid (or the simplex).

    Args:
        train_prompts: a prompt source (``HFPrompts`` for a dataset or local files, ``LexiconPrompts`` for the
            built-in task, ``ListPrompts``).
        eval_prompts: prompt source of the evaluation sweep; None takes the last ``num_eval_prompts`` training
            prompts (and removes them from training).
        num_objectives: ``K``; None means 2 (the command line sets it from the policy's ``objective_names``).
        batch_size: prompts per training step (per device); a step has ``batch_size * weights_per_prompt`` rows.
        alpha: Dirichlet concentration (the paper: 1.0; 0.5 is its corner-heavy ablation).
        grid_divisions: training support ``simplex_grid(K, grid_divisions)`` (10 gives the paper's 11 weights);
            None samples the continuous simplex.
        steps_per_preference: optimizer steps one preference is held for. None (the default) holds each for
            one step, unless a ``MetaLoop`` callback sets it: the task length is the ``MetaLoop``'s to decide (its
            ``inner_steps``), and an explicit value that differs is refused there.
        per_prompt_preferences: draw one ``w`` per prompt instead of one per batch (needs steps_per_preference 1).
        weights_per_prompt: rows per drawn prompt, consecutive, each under its own ``w`` (needs
            ``per_prompt_preferences``): a batch has ``batch_size * weights_per_prompt`` rows, and every prompt is
            answered under several weights in the same step (what ``GRPOModule``'s ``cross_weight`` compares).
            Each row's ``w`` is its own independent draw, so two rows of one prompt can share a ``w``, unless
            ``mirror_weights`` pairs them.
        mirror_weights: the rows of a prompt come in pairs, a draw ``w`` and its mirror ``reversed(w)``
            (``(a, 1 - a)`` and ``(1 - a, a)`` for two objectives; ``mirrored_pairs``). For two objectives a
            pair's weights lie on either side of ``(0.5, 0.5)``, which is each prompt's mean weight, and are as
            far apart as ``|2a - 1|`` (0.55 on average on the 11-point grid, against 0.36 between two
            independent draws); ``(0.5, 0.5)`` is its own mirror. Needs an even ``weights_per_prompt`` and an
            ``alpha`` that reads the same reversed (every row then still follows ``Dirichlet(alpha)``).
        eval_weights: ``"paper_table1"`` (the 28 weights of Table 1, K=2), ``"lattice"`` (``simplex_grid(K,
            eval_lattice_divisions)``) or an explicit list of weights.
        eval_lattice_divisions: divisions of the ``"lattice"`` sweep.
        num_eval_prompts: prompts per evaluation weight.
        eval_batch_size: (prompt, w) pairs per evaluation batch.
        max_prompt_chars: prompts longer than this are cut to this many characters (documented truncation; the
            count is logged). None keeps prompts whole; the policy refuses over-long token sequences.
        seed: seeds the prompt order and the preference sampler (identical on every rank, so all ranks train on the
            same preference at each step, which the meta-learning tasks require).

    Example:
        >>> from pareto_lightning.data.sources import ListPrompts
        >>> dm = PreferencePromptDataModule(ListPrompts(["a", "b", "c", "d"]), batch_size=2, num_eval_prompts=1)
        >>> dm.setup("fit")
        >>> batch = dm.next_train_batch()
        >>> len(batch["prompts"]), batch["weights"].shape
        (2, torch.Size([2, 2]))
    """

    def __init__(
        self,
        train_prompts: PromptSource,
        eval_prompts: PromptSource | None = None,
        num_objectives: int | None = None,
        batch_size: int = 8,
        alpha: float | list[float] = 1.0,
        grid_divisions: int | None = 10,
        steps_per_preference: int | None = None,
        per_prompt_preferences: bool = False,
        weights_per_prompt: int = 1,
        mirror_weights: bool = False,
        eval_weights: str | list[list[float]] = "paper_table1",
        eval_lattice_divisions: int = 10,
        num_eval_prompts: int = 8,
        eval_batch_size: int = 32,
        max_prompt_chars: int | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        num_objectives = 2 if num_objectives is None else num_objectives
        problems = []
        if batch_size < 1:
            problems.append(f"`data.init_args.batch_size` must be >= 1; got {batch_size}.")
        try:
            schedule = PreferenceSchedule(
                steps_per_preference,
                per_prompt_preferences,
                weights_per_prompt=weights_per_prompt,
                mirror_weights=mirror_weights,
            )
        except ScheduleError as error:
            problems.append(f"`data.init_args.{error.field}`: {error}")
        if grid_divisions is not None and grid_divisions < 1:
            problems.append(f"`data.init_args.grid_divisions` must be >= 1 or null; got {grid_divisions}.")
        if num_eval_prompts < 1 or eval_batch_size < 1:
            problems.append("`data.init_args.num_eval_prompts` and `eval_batch_size` must be >= 1.")
        if max_prompt_chars is not None and max_prompt_chars < 1:
            problems.append(
                f"`data.init_args.max_prompt_chars` must be >= 1 or null; got {max_prompt_chars}."
            )
        if problems:
            raise ValueError("invalid PreferencePromptDataModule configuration:\n  " + "\n  ".join(problems))
        if getattr(eval_prompts, "key", None) == "data.init_args.train_prompts":  # HFPrompts' default key
            eval_prompts.key = "data.init_args.eval_prompts"  # so its errors name the right source
        self.train_source, self.eval_source = train_prompts, eval_prompts
        self.num_objectives, self.batch_size = num_objectives, batch_size
        # Replaced, never edited, by the parts that own its fields (see PreferenceSchedule).
        self.schedule = schedule
        self.num_eval_prompts, self.eval_batch_size = num_eval_prompts, eval_batch_size
        self.max_prompt_chars, self.seed = max_prompt_chars, seed
        self.train_support = (
            None if grid_divisions is None
            else simplex_grid(num_objectives, grid_divisions, key="data.init_args.grid_divisions")
        )  # fmt: skip
        self.sampler = DirichletPreferenceSampler(
            num_objectives, alpha, self.train_support, seed=seed, key="data.init_args.alpha"
        )
        if mirror_weights and not torch.equal(self.sampler.alpha, self.sampler.alpha.flip(0)):
            raise ValueError(
                "`data.init_args.mirror_weights: true` needs a `data.init_args.alpha` that reads the same reversed "
                "(one value, or e.g. [2, 1, 2]): a mirrored row follows Dirichlet(reversed alpha), not "
                f"Dirichlet(alpha); got {self.sampler.alpha.tolist()}."
            )
        self.eval_weights = resolve_eval_weights(eval_weights, num_objectives, eval_lattice_divisions)
        support = self.train_support if self.train_support is not None else torch.zeros(0, num_objectives)
        self.eval_seen = split_seen_unseen(self.eval_weights, support)  # [M] bool
        self.train_prompts: list[str] = []
        self.eval_prompts: list[str] = []
        self._order_rng = torch.Generator().manual_seed(seed + 1)
        self._order: Tensor = torch.zeros(0, dtype=torch.long)
        self._cursor = 0
        self._held: Tensor | None = None  # the preference of the current task
        self._held_left = 0  # batches left under it
        self._before_draw: dict[str, Any] | None = None  # the state before the last batch (rewind_last_batch)
        self._draws = 0  # batches served so far
        self._window: list[
            dict[str, Any]
        ] = []  # the current window's fresh batches, served again while reused

    @property
    def steps_per_preference(self) -> int | None:
        """Optimizer steps one preference is held for (``schedule.steps_per_preference``)."""
        return self.schedule.steps_per_preference

    @property
    def per_prompt_preferences(self) -> bool:
        """One preference per prompt (``schedule.per_prompt_preferences``)."""
        return self.schedule.per_prompt_preferences

    # -------------------------------------------------------------------------------------------------- setup
    def _clean(self, prompts: list[str], key: str) -> list[str]:
        if not prompts:
            raise ValueError(f"`{key}` yielded no prompts.")
        if self.max_prompt_chars is None:
            return prompts
        cut = sum(len(p) > self.max_prompt_chars for p in prompts)
        if cut:
            log.warning(
                f"{cut} of {len(prompts)} prompts from `{key}` cut to max_prompt_chars={self.max_prompt_chars}."
            )
        return [p[: self.max_prompt_chars] for p in prompts]

    def setup(self, stage: str) -> None:
        if self.train_prompts:
            return
        train = self._clean(self.train_source.load(), "data.init_args.train_prompts")
        if self.eval_source is not None:
            evals = self._clean(self.eval_source.load(), "data.init_args.eval_prompts")[
                : self.num_eval_prompts
            ]
        else:
            if len(train) <= self.num_eval_prompts:
                raise ValueError(
                    f"`data.init_args.eval_prompts` is null and the {len(train)} training prompts cannot spare "
                    f"num_eval_prompts={self.num_eval_prompts}; give eval_prompts or more training prompts."
                )
            train, evals = train[: -self.num_eval_prompts], train[-self.num_eval_prompts :]
        self.train_prompts, self.eval_prompts = train, evals

    # ---------------------------------------------------------------------------------------------- training
    def train_dataloader(self) -> DataLoader:
        return DataLoader(Ticks(), batch_size=None)

    def _world(self) -> tuple[int, int]:
        trainer = self.trainer
        return (0, 1) if trainer is None else (trainer.global_rank, trainer.world_size)

    def _next_prompts(self) -> list[str]:
        # Every rank walks the same shuffled order; per step the ranks take consecutive slices of it.
        rank, world = self._world()
        need = world * self.batch_size
        while len(self._order) - self._cursor < need:  # append another pass over the prompts
            fresh = torch.randperm(len(self.train_prompts), generator=self._order_rng)
            self._order, self._cursor = torch.cat([self._order[self._cursor :], fresh]), 0
        start = self._cursor + rank * self.batch_size
        out = [self.train_prompts[int(i)] for i in self._order[start : start + self.batch_size]]
        self._cursor += need
        return out

    def _accumulate(self) -> int:
        trainer = self.trainer
        return trainer.accumulate_grad_batches if trainer is not None else 1

    def _batches_per_preference(self) -> int:
        # Counted in fresh batches: with batch_reuse, each window of micro-batches serves several steps.
        a = self._accumulate()
        return max(a, self.schedule.held_steps * a // self.schedule.batch_reuse)

    def next_train_batch(self) -> dict[str, Any]:
        """Draw the next training batch: ``{"prompts": list[str] [B], "weights": Tensor [B, K]}``.

        With ``batch_reuse = mu > 1`` (set by an algorithm module that reuses each rollout for ``mu`` optimizer
        steps) each window of ``accumulate_grad_batches`` batches is served ``mu`` times in a row, so the
        module's reused rollouts and the batches it is handed agree and no prompt is skipped.
        """
        self._before_draw = self.state_dict()
        window = self._accumulate()
        position = self._draws % (window * self.schedule.batch_reuse)
        self._draws += 1
        if position >= window:  # a repeat of this window's batch
            held = self._window[position % window]
            return {"prompts": list(held["prompts"]), "weights": held["weights"].clone()}
        batch = self._draw()
        if self.schedule.batch_reuse > 1:
            self._window[position : position + 1] = [batch]
        return batch

    def _draw(self) -> dict[str, Any]:
        prompts = [p for p in self._next_prompts() for _ in range(self.schedule.weights_per_prompt)]
        if self.schedule.mirror_weights:  # each prompt's rows: w, reversed(w), w', reversed(w') ...
            weights = mirrored_pairs(self.sampler.sample(len(prompts) // 2))  # [B, K]
        elif self.schedule.per_prompt_preferences:
            weights = self.sampler.sample(len(prompts))  # [B, K]
        else:
            if self._held_left == 0:
                # With parallel meta tasks every rank draws one preference per task group (the same draws on
                # every rank) and keeps its group's.
                group, groups = self.schedule.preference_group
                self._held = self.sampler.sample(groups)[group]  # [K]
                self._held_left = self._batches_per_preference()
            self._held_left -= 1
            weights = self._held.expand(len(prompts), -1).clone()  # [B, K]
        return {"prompts": prompts, "weights": weights.float()}

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        if isinstance(batch, dict) and batch.get(TRAIN_TICK):
            return self.next_train_batch()
        return batch

    def rewind_last_batch(self) -> None:
        """Return to the state before the last drawn batch, so it is drawn again (a step that failed midway).

        Example:
            >>> from pareto_lightning.data.sources import ListPrompts
            >>> dm = PreferencePromptDataModule(ListPrompts(["a", "b", "c", "d"]), batch_size=2, num_eval_prompts=1)
            >>> dm.setup("fit")
            >>> first = dm.next_train_batch(); dm.rewind_last_batch()
            >>> dm.next_train_batch()["prompts"] == first["prompts"]
            True
        """
        if self._before_draw is not None:
            self.load_state_dict(self._before_draw)
            self._before_draw = None

    # ------------------------------------------------------------------------------------------- evaluation
    def _eval_loader(self) -> DataLoader:
        rank, world = self._world()
        items = [(w, p) for w in range(len(self.eval_weights)) for p in range(len(self.eval_prompts))]
        mine = items[rank::world]
        # Ranks hold at most one item more than each other; all of them run as many batches as the largest share.
        num_batches = math.ceil(math.ceil(len(items) / world) / self.eval_batch_size)
        if len(items) // world < num_batches:
            raise ValueError(
                f"the evaluation sweep has {len(items)} (weight, prompt) pairs, too few to give each of "
                f"{world} ranks {num_batches} batches; raise `data.init_args.num_eval_prompts` or "
                "`data.init_args.eval_batch_size`."
            )
        sizes = eval_batch_sizes(len(mine), self.eval_batch_size, num_batches)
        shard = EvalShard(mine, self.eval_prompts, self.eval_weights.float(), sizes)
        return DataLoader(shard, batch_size=None)

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader()

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader()

    def predict_dataloader(self) -> DataLoader:
        """The same sweep (``eval_prompts`` x ``eval_weights``) for ``predict``: the paper's Table 2 view."""
        return self._eval_loader()

    # ------------------------------------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        return {
            "sampler": self.sampler.state_dict(),
            "order_rng": self._order_rng.get_state(),
            "order": self._order.clone(),
            "cursor": self._cursor,
            "held": None if self._held is None else self._held.clone(),
            "held_left": self._held_left,
            "draws": self._draws,
            "window": [
                {"prompts": list(b["prompts"]), "weights": b["weights"].clone()} for b in self._window
            ],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sampler.load_state_dict(state["sampler"])
        self._order_rng.set_state(state["order_rng"])
        self._order, self._cursor = state["order"].clone(), int(state["cursor"])
        self._held = None if state["held"] is None else state["held"].clone()
        self._held_left = int(state["held_left"])
        self._draws = int(state.get("draws", 0))
        self._window = [
            {"prompts": list(b["prompts"]), "weights": b["weights"].clone()} for b in state.get("window", [])
        ]

__all__ = [
    "PreferencePromptDataModule",
]
