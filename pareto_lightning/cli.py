"""The command line: ``python recipes/train.py {fit,validate,test,predict} --config <recipe>.yaml``."""

from __future__ import annotations

import importlib
import inspect
import os

from lightning.pytorch.cli import LightningCLI

from pareto_lightning.algorithms import PreferenceAlignmentModule
from pareto_lightning.callbacks import ParetoEvaluation
from pareto_lightning.data import PreferencePromptDataModule


class ParetoCLI(LightningCLI):
    """``LightningCLI`` with the project's links, so a value needed in two places is set once.

    Links: ``data.init_args.num_objectives`` is the number of the policy's ``objective_names``. The meta-learning
    task length is set once, as ``MetaLoop.inner_steps``: the data module's ``steps_per_preference`` (left null)
    takes it at setup, and an explicit value that differs is refused with an error naming both keys. Prompt
    sources with a ``check()`` (``HFPrompts``) are checked before any class is built, so a missing dataset fails
    before the models load.
    """

    def add_arguments_to_parser(self, parser) -> None:
        parser.link_arguments(
            "model.init_args.policy.init_args.objective_names",
            "data.init_args.num_objectives",
            compute_fn=len,
        )

    def before_instantiate_classes(self) -> None:
        # A wrong dataset name or path fails here, in seconds, before the policy and reward models load.
        config = self.config[self.subcommand] if self.subcommand else self.config
        for field in ("train_prompts", "eval_prompts"):
            spec = config.get(f"data.init_args.{field}")
            class_path = getattr(spec, "class_path", None)
            if class_path is None:
                continue
            module, _, name = class_path.rpartition(".")
            cls = getattr(importlib.import_module(module), name)
            if hasattr(cls, "check"):
                init_args = spec.get("init_args")
                kwargs = init_args.as_dict() if init_args is not None else {}
                if "key" in inspect.signature(cls).parameters:  # errors name the source's own key
                    kwargs.setdefault("key", f"data.init_args.{field}")
                cls(**kwargs).check()

    def before_predict(self) -> None:
        # `predict` sweeps the data module's prompts over its preferences; write the results unless the config
        # already names a writer.
        from pareto_lightning.callbacks import JSONLPredictionWriter

        if not any(isinstance(c, JSONLPredictionWriter) for c in self.trainer.callbacks):
            writer = JSONLPredictionWriter()
            self.trainer.callbacks.append(writer)
            writer.setup(self.trainer, self.model, "predict")

    def after_fit(self) -> None:
        self._say_where()

    def after_validate(self) -> None:
        self._say_where()

    def after_test(self) -> None:
        self._say_where()

    def _say_where(self) -> None:
        trainer = self.trainer
        if not trainer.is_global_zero:
            return
        log_dir = os.path.abspath(trainer.log_dir or trainer.default_root_dir)
        evaluation = next((c for c in trainer.callbacks if isinstance(c, ParetoEvaluation)), None)
        summary = getattr(evaluation, "last_summary", None)
        if summary is not None:
            print(f"Step {trainer.global_step}: {headline(summary['scalars'])}")
        print(
            f"Results in {log_dir}: frontier.csv, pareto_front.png, samples.jsonl, checkpoints/; "
            f"view with `tensorboard --logdir {os.path.dirname(log_dir)}`."
        )


def headline(scalars: dict[str, float]) -> str:
    """One line of the figures that say whether the policy steers (greedy points of the evaluation sweep).

    Example:
        >>> headline({"pu_seen": 0.2, "pu_unseen": 0.25, "spearman": 0.95, "max_gap": 0.4, "hypervolume": 0.4})
        'PU seen 0.2000 / unseen 0.2500, hypervolume 0.4000, Spearman 0.95, max gap 0.400 (lower PU is better)'
    """
    parts = [f"PU seen {scalars['pu_seen']:.4f} / unseen {scalars['pu_unseen']:.4f}"]
    if "pu_regret" in scalars:  # a task with a known front
        parts.append(
            f"PU regret seen {scalars['pu_regret_seen']:.4f} / unseen {scalars['pu_regret_unseen']:.4f}"
        )
        parts.append(f"HV ratio {scalars['hv_ratio']:.3f} (ceiling {scalars['hv_ceiling']:.3f})")
    else:
        parts.append(f"hypervolume {scalars['hypervolume']:.4f}")
    parts.append(f"Spearman {scalars['spearman']:.2f}, max gap {scalars['max_gap']:.3f} (lower PU is better)")
    return ", ".join(parts)


def main(args: list[str] | None = None) -> ParetoCLI:
    """Run the CLI (``args`` defaults to ``sys.argv``)."""
    return ParetoCLI(
        PreferenceAlignmentModule,
        PreferencePromptDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        save_config_kwargs={"overwrite": True},
        args=args,
    )
