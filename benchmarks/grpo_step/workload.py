"""The grid of settings and the work every side does per step in one of them.

Per step, on every side: ``NUM_PROMPTS`` preference-conditioned lexicon prompts, ``NUM_GENERATIONS``
completions each (sampling at temperature 1, top-p 1, no top-k), at most ``NEW_TOKENS`` new tokens; the
task's two lexicon rewards scalarized by ``SmoothTchebycheff`` under each prompt's preference; GRPO with
group-scaled advantages and the per-sequence mean, one update per rollout, AdamW at ``LEARNING_RATE``
without weight decay or gradient clipping; with ``beta > 0`` a k3 KL term to a frozen copy of the starting
weights (one more forward per step). A model of ``LORA_MODELS`` trains the recipes' LoRA adapter instead of
every weight, on every side.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from pareto_lightning import PreferencePromptDataModule, SmoothTchebycheff
from pareto_lightning.policy import PreferencePolicy
from pareto_lightning.rewards import MultiObjectiveReward
from pareto_lightning.tasks import LexiconPrompts, LexiconTask

from .models import LORA_MODELS

NUM_PROMPTS, NUM_GENERATIONS, NEW_TOKENS, LEARNING_RATE = 4, 4, 16, 1e-4
NUM_TRAIN_PROMPTS = 128
LENGTHS = ("forced", "free")


@dataclass(frozen=True)
class Cell:
    """One setting of the grid.

    Attributes:
        model: a key of :data:`~.models.MODELS` (``"tiny"`` or ``"smol135m"``).
        threads: ``torch.set_num_threads`` during the runs of this cell.
        lengths: ``"forced"``: every completion has exactly ``NEW_TOKENS`` tokens (the end-of-sequence logit
            is masked until then, ``min_new_tokens``); ``"free"``: a completion ends at its first
            end-of-sequence token or at ``NEW_TOKENS``.
        beta: KL coefficient; ``0`` needs no reference model.
    """

    model: str
    threads: int
    lengths: str
    beta: float

    @property
    def forced(self) -> bool:
        """Whether completions are forced to ``NEW_TOKENS`` tokens."""
        return self.lengths == "forced"

    @property
    def lora(self) -> bool:
        """Whether every side trains a LoRA adapter (:func:`lora_config`) rather than every weight."""
        return self.model in LORA_MODELS

    @property
    def key(self) -> str:
        """A short unique name, e.g. ``tiny/t1/forced/b0.1``."""
        return f"{self.model}/t{self.threads}/{self.lengths}/b{self.beta:g}"


def grid(
    models: Sequence[str], threads: Sequence[int], lengths: Sequence[str], betas: Sequence[float]
) -> list[Cell]:
    """Every combination of the given values, the model varying slowest.

    Args:
        models: model keys.
        threads: torch thread counts.
        lengths: ``"forced"`` and/or ``"free"``.
        betas: KL coefficients.

    Returns:
        The cells, in a fixed order.

    Raises:
        ValueError: an unknown length mode.

    Example:
        >>> [c.key for c in grid(["tiny"], [1], ["forced", "free"], [0.0])]
        ['tiny/t1/forced/b0', 'tiny/t1/free/b0']
    """
    unknown = sorted(set(lengths) - set(LENGTHS))
    if unknown:
        raise ValueError(f"`--lengths` takes {list(LENGTHS)}; got {unknown}.")
    return [Cell(m, t, n, float(b)) for m, t, n, b in itertools.product(models, threads, lengths, betas)]


def generation_settings(forced: bool) -> dict[str, object]:
    """The sampling settings of ``generate`` shared by every side (``min_new_tokens`` only when forced).

    Example:
        >>> generation_settings(True)["min_new_tokens"], "min_new_tokens" in generation_settings(False)
        (16, False)
    """
    settings: dict[str, object] = {
        "do_sample": True, "temperature": 1.0, "top_p": 1.0, "top_k": 0, "max_new_tokens": NEW_TOKENS,
    }  # fmt: skip
    if forced:
        settings["min_new_tokens"] = NEW_TOKENS
    return settings


def lora_config() -> object:
    """The LoRA adapter of ``recipes/smollm2/*.yaml``: r 8, alpha 16, no dropout, on ``q/k/v/o_proj``.

    Example:
        >>> c = lora_config()
        >>> c.r, c.lora_alpha, sorted(c.target_modules)
        (8, 16, ['k_proj', 'o_proj', 'q_proj', 'v_proj'])
    """
    from peft import LoraConfig

    return LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
                      task_type="CAUSAL_LM")  # fmt: skip


def task() -> LexiconTask:
    """The built-in task with two objectives."""
    return LexiconTask()


def conditioned_dataset(
    model: torch.nn.Module, tokenizer: object, seed: int
) -> tuple[list[str], list[str], Tensor]:
    """The training prompts, their conditioned texts and one preference each, as our data module draws them.

    TRL and the bare loop read prompts from this fixed list; our side draws from the same data module.

    Args:
        model: the side's model (the prompt writer checks it; only the tokenizer shapes the text).
        tokenizer: the tokenizer the policy writes prompts for (it has no chat template here).
        seed: the data module's seed (which preferences).

    Returns:
        ``(raw prompts [P], conditioned texts [P], weights [P, K])``.
    """
    names = list(task().objective_names)
    writer = PreferencePolicy(model, tokenizer, objective_names=names)
    data = PreferencePromptDataModule(
        LexiconPrompts(NUM_TRAIN_PROMPTS), batch_size=NUM_PROMPTS, num_eval_prompts=4, seed=seed
    )
    data.setup("fit")
    weights = data.sampler.sample(len(data.train_prompts)).float()  # [P, K]
    prompts = list(data.train_prompts)
    return prompts, writer.conditioned_prompts(prompts, weights), weights


def utility_function() -> tuple[MultiObjectiveReward, SmoothTchebycheff]:
    """The reward code of every side: the task's ``MultiObjectiveReward`` and the scalarizer."""
    return task().reward(), SmoothTchebycheff()
