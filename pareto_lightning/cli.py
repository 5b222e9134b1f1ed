"""The command line: ``python recipes/train.py {fit,validate,test,predict} --config <recipe>.yaml``."""

from __future__ import annotations

import importlib
import inspect
import os
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.utilities.rank_zero import rank_zero_warn

from pareto_lightning.algorithms import PreferenceAlignmentModule
from pareto_lightning.callbacks import ParetoEvaluation
from pareto_lightning.checkpointing import check_checkpoint_path
from pareto_lightning.config_errors import check_writable_folder, short_parser_message
from pareto_lightning.data import PreferencePromptDataModule
from pareto_lightning.preferences import validate_preference  # noqa: F401  (doctest namespace)
from pareto_lightning.quiet import silence_expected_messages
from pareto_lightning.recipe_bases import BASE_KEY, expand_bases
from pareto_lightning.sharding import end_process_group


class ParetoCLI(LightningCLI):
    """``LightningCLI`` with the project's links, so a value needed in two places is set once.

    Links: each reward function with a ``key`` argument gets its own config key (``...functions[0]``, ...), so
    its errors name the entry to fix. ``data.init_args.num_objectives`` is the number of the policy's
    ``objective_names`` (left null it is set from them; an explicit value that differs is refused, naming both
    keys). The meta-learning task length is set once, as ``MetaLoop.inner_steps``: the callback sets the data module's
    ``steps_per_preference`` (left null) when fitting starts, and refuses an explicit value that differs. Prompt
    sources with a ``check()`` (``HFPrompts``) are checked before any class is built, so a missing dataset fails
    before the models load, and so is the run folder (``trainer.default_root_dir``): it must be writable. A value
    the parser refuses is reported as its key and the reasons (:func:`short_parser_message`).

    The optimizer and learning-rate schedule are the algorithm module's own (``model.init_args.optimizer`` /
    ``lr_scheduler``, AdamW with a warmup and cosine decay by default): LightningCLI's top-level ``optimizer:`` /
    ``lr_scheduler:`` keys, which would replace the module's ``configure_optimizers``, are not offered.
    """

    def __init__(self, *args: Any, auto_configure_optimizers: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, auto_configure_optimizers=auto_configure_optimizers, **kwargs)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument(
            f"--{BASE_KEY}", type=str | None, default=None,
            help="The recipe this one extends (a path relative to it), stacked before it as a --config.",
        )  # fmt: skip

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        # `base: <file>` in a recipe: the base goes first, as a stacked --config (pareto_lightning.recipe_bases).
        if args is None or isinstance(args, (list, tuple)):
            self.config = parser.parse_args(expand_bases(sys.argv[1:] if args is None else args))
        else:
            super().parse_arguments(parser, args)

    def init_parser(self, **kwargs: Any) -> LightningArgumentParser:
        if self.parser_class is LightningArgumentParser:
            self.parser_class = _ShortErrorParser
        return super().init_parser(**kwargs)

    def _parse_ckpt_path(self) -> None:
        # LightningCLI reads the checkpoint's hyperparameters here, right after parsing: check the file first.
        subcommand = self.config.get("subcommand")
        if subcommand:
            check_checkpoint_path(self.config[subcommand].get("ckpt_path"))
        super()._parse_ckpt_path()

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        root = config.get("trainer.default_root_dir")
        check_writable_folder(root or os.getcwd(), "trainer.default_root_dir")
        _set_num_objectives(config)
        _set_function_keys(config)
        # A wrong dataset name or path fails here, in seconds, before the policy and reward models load.
        for field in ("train_prompts", "eval_prompts"):
            spec = config.get(f"data.init_args.{field}")
            class_path = getattr(spec, "class_path", None)
            if class_path is None:
                continue
            cls = _class_of(class_path)
            if hasattr(cls, "check"):
                init_args = spec.get("init_args")
                kwargs = init_args.as_dict() if init_args is not None else {}
                if "key" in inspect.signature(cls).parameters:  # errors name the source's own key
                    kwargs.setdefault("key", f"data.init_args.{field}")
                cls(**kwargs).check()

    def _instantiate_trainer(self, config: dict, callbacks: list) -> Any:
        """Add the run-safety defaults: a checkpoint when ``fit`` fails, and a progress bar that counts steps."""
        from lightning.pytorch.callbacks import ProgressBar
        from lightning.pytorch.utilities.imports import _RICH_AVAILABLE

        from pareto_lightning.callbacks import CrashCheckpoint
        from pareto_lightning.callbacks.progress import StepProgressBar

        given = list(config.get("callbacks") or []) + list(callbacks)
        extra = []
        checkpointing = config.get("enable_checkpointing") is not False and not config.get("fast_dev_run")
        if (
            self.subcommand == "fit"
            and checkpointing
            and not any(isinstance(c, CrashCheckpoint) for c in given)
        ):
            extra.append(CrashCheckpoint())
        if config.get("enable_progress_bar") is not False and _RICH_AVAILABLE:
            if not any(isinstance(c, ProgressBar) for c in given):
                extra.append(StepProgressBar())
        return super()._instantiate_trainer(config, [*callbacks, *extra])

    def _warn_without_checkpoint(self) -> None:
        config = self.config[self.subcommand]
        if config.get("ckpt_path") is None:
            rank_zero_warn(
                f"`{self.subcommand}` without `--ckpt_path` evaluates the weights the config builds (for the "
                "recipes: the untrained base policy), not a trained one; pass `--ckpt_path <file>.ckpt` (e.g. "
                "lightning_logs/version_<n>/checkpoints/last.ckpt) unless this is what you want."
            )

    def before_validate(self) -> None:
        self._warn_without_checkpoint()

    def before_test(self) -> None:
        self._warn_without_checkpoint()

    def before_predict(self) -> None:
        self._warn_without_checkpoint()
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
            print(f"Step {summary.step}: {headline(summary.scalars)}")
        files = [f for f in _RESULT_FILES if os.path.exists(os.path.join(log_dir, f))]
        print(
            f"Results in {log_dir}: {', '.join(files) or 'TensorBoard logs'}; "
            f"view with `tensorboard --logdir {os.path.dirname(log_dir)}`."
        )


class _ShortErrorParser(LightningArgumentParser):
    """Reports a refused value as one message: this package's own error, or the key and the parser's reasons."""

    def error(self, message: str, ex: Exception | None = None) -> Any:
        if not self.exit_on_error or os.environ.get(TRACEBACK_ENV) == "1":
            return super().error(message, ex)
        mine = own_error(ex) if ex is not None else None
        parser = getattr(ex, "subcommand_parser", None) or self
        prog = parser.prog.replace(" [options]", "")
        print(
            f"error: {mine if mine is not None else short_parser_message(message)}\n(`{prog} --help` lists the "
            f"accepted values; set {TRACEBACK_ENV}=1 for the parser's full message)",
            file=sys.stderr,
        )
        self.exit(2)


_RESULT_FILES = ("summary.json", "frontier.csv", "pareto_front.png", "samples.jsonl", "predictions.jsonl",
                 "checkpoints/")  # fmt: skip
"""What a run may leave in its log folder; the last line lists those that exist."""
_NAMES_KEY = "model.init_args.policy.init_args.objective_names"
_K_KEY = "data.init_args.num_objectives"


def _set_num_objectives(config) -> None:
    """``data.init_args.num_objectives`` follows the policy's ``objective_names``: set when null, checked when set.

    (Not a jsonargparse link: a link overwrites a value the user typed without a word.)
    """
    names = config.get(_NAMES_KEY)
    if names is None or config.get("data.init_args") is None:
        return
    given = config.get(_K_KEY)
    if given is None:
        config[_K_KEY] = len(names)
    elif given != len(names):
        raise ValueError(
            f"`{_K_KEY}`={given} but `{_NAMES_KEY}` has {len(names)} names ({list(names)}); leave "
            f"`{_K_KEY}` unset (it follows the names) or make the two agree."
        )


def _class_of(class_path: str) -> Any:
    """The class a config's ``class_path`` names."""
    module, _, name = class_path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _set_function_keys(config: Any) -> None:
    """Give each reward function that takes a ``key`` its own config key, unless the config already set one."""
    from pareto_lightning.rewards.scorers import FUNCTION_KEY

    prefix = "model.init_args.reward.init_args.functions"
    for k, spec in enumerate(config.get(prefix) or []):
        class_path, init_args = getattr(spec, "class_path", None), getattr(spec, "init_args", None)
        if class_path is None or init_args is None or init_args.get("key", FUNCTION_KEY) != FUNCTION_KEY:
            continue
        if "key" in inspect.signature(_class_of(class_path)).parameters:
            init_args["key"] = f"{prefix}[{k}]"


def headline(scalars: dict[str, float]) -> str:
    """One line of the figures that say whether the policy steers (greedy points of the evaluation sweep).

    Example:
        >>> headline({"pu_seen": 0.2, "pu_unseen": 0.25, "spearman": 0.95, "max_gap": 0.4, "hypervolume": 0.4})
        'PU seen 0.2000 / unseen 0.2500, hypervolume 0.4000, Spearman 0.95, max gap 0.400 (lower PU is better)'
        >>> headline({"pu_seen": 0.2, "pu_unseen": 0.25, "spearman": 0.95, "max_gap": 0.4, "hypervolume": 0.4,
        ...           "prompt_steer_frac/a": 0.6, "prompt_steer_median/a": 0.55,
        ...           "prompt_steer_frac/b": 0.7, "prompt_steer_median/b": 0.65})
        'PU seen 0.2000 / unseen 0.2500, hypervolume 0.4000, Spearman 0.95, max gap 0.400,
         prompts steered a 0.60 / b 0.70 (median Spearman 0.55 / 0.65) (lower PU is better)'
    """
    parts = [f"PU seen {scalars['pu_seen']:.4f} / unseen {scalars['pu_unseen']:.4f}"]
    if "pu_regret" in scalars:  # a task with a known front
        parts.append(
            f"PU regret seen {scalars['pu_regret_seen']:.4f} / unseen {scalars['pu_regret_unseen']:.4f}"
        )
        parts.append(f"HV ratio {scalars['hv_ratio']:.3f} (ceiling {scalars['hv_ceiling']:.3f})")
    else:
        parts.append(f"hypervolume {scalars['hypervolume']:.4f}")
    parts.append(f"Spearman {scalars['spearman']:.2f}, max gap {scalars['max_gap']:.3f}")
    steer = [key.split("/", 1)[1] for key in scalars if key.startswith("prompt_steer_frac/")]
    if steer:  # per objective: the share of prompts that w steers, and the median per-prompt Spearman
        parts.append("prompts steered " + " / ".join(f"{n} {scalars[f'prompt_steer_frac/{n}']:.2f}" for n in steer)
                     + " (median Spearman " + " / ".join(f"{scalars[f'prompt_steer_median/{n}']:.2f}" for n in steer)
                     + ")")  # fmt: skip
    return ", ".join(parts) + " (lower PU is better)"


TRACEBACK_ENV = "PARETO_LIGHTNING_TRACEBACK"
"""Set to 1 to see the full traceback of a configuration error instead of its one-line message."""
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def own_error(error: BaseException) -> BaseException | None:
    """The error this package raised at the root of ``error``'s chain, if any.

    jsonargparse wraps a class's ``ValueError`` in "Does not validate against any of the Union subtypes" and a
    dump of the whole config; the message a user needs is the innermost one raised here.

    Example:
        >>> try:
        ...     try:
        ...         validate_preference([0.9, 0.3], 2, key="data.init_args.eval_weights")
        ...     except ValueError as inner:
        ...         raise ValueError("Does not validate against any of the Union subtypes") from inner
        ... except ValueError as outer:
        ...     print(own_error(outer))
        `data.init_args.eval_weights` must lie on the simplex: 2 entries, each >= 0, summing to 1 (within 1e-06); ...
    """
    found, seen = None, set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        frames = traceback.extract_tb(error.__traceback__)
        if (
            isinstance(error, (ValueError, TypeError, OSError))
            and frames
            and (os.path.abspath(frames[-1].filename).startswith(_PACKAGE_DIR))
        ):
            found = error
        error = error.__cause__ or error.__context__
    return found


@contextmanager
def short_errors() -> Iterator[None]:
    """Report this package's configuration errors as one message instead of a double traceback.

    Other errors, and every error when ``PARETO_LIGHTNING_TRACEBACK=1``, keep their full traceback.
    """
    try:
        yield
    except Exception as error:
        mine = own_error(error)
        if mine is None or os.environ.get(TRACEBACK_ENV) == "1":
            raise
        print(f"error: {mine}\n(set {TRACEBACK_ENV}=1 for the full traceback)", file=sys.stderr)
        raise SystemExit(2) from None


def printed_config(args: list[str]) -> dict[str, Any]:
    """The whole config that ``args`` give (``base`` files, stacked ``--config`` files and overrides applied).

    It is what ``--print_config`` prints, read back as a dict: the recipe as the run would see it, without
    building any model or dataset. ``args`` start with the subcommand, e.g.
    ``["fit", "--config", "recipes/weighted_meta.yaml"]``.
    """
    import contextlib
    import io

    import yaml

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            main([*args, "--print_config"])
        except SystemExit as end:
            if end.code not in (0, None):
                raise
    return yaml.safe_load(out.getvalue())


def main(args: list[str] | None = None) -> ParetoCLI:
    """Run the CLI (``args`` defaults to ``sys.argv``); configuration errors print as one message.

    Every process ends its process group once the subcommand has run (:func:`end_process_group`).
    """
    silence_expected_messages()
    with short_errors():
        cli = ParetoCLI(
            PreferenceAlignmentModule,
            PreferencePromptDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            save_config_kwargs={"overwrite": True},
            args=args,
        )
    end_process_group()
    return cli


__all__ = [
    "ParetoCLI",
    "TRACEBACK_ENV",
    "headline",
    "printed_config",
    "main",
    "own_error",
    "short_errors",
]
