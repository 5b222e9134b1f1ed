"""Every config key an error message names is a path a user can type: it exists in a recipe's resolved config."""

import glob
import os
import re

import pytest

from pareto_lightning.cli import printed_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PACKAGE = os.path.join(ROOT, "pareto_lightning")
# Every runnable recipe; the shared files under recipes/base/ are read through the recipes that extend them.
RECIPES = sorted(p for p in glob.glob(os.path.join(ROOT, "recipes", "**", "*.yaml"), recursive=True)
                 if os.sep + "base" + os.sep not in p)  # fmt: skip
# Trainer attributes that messages mention as state, not as settings.
RUNTIME = {"trainer.global_step", "trainer.log_dir"}
QUOTED = re.compile(r"`((?:model|data|trainer)\.[A-Za-z_.0-9\[\]]+|\{_KEY\}[A-Za-z_.0-9\[\]]*)`")


def _flatten(value, prefix=""):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _flatten(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(value, list):
        for v in value:
            yield from _flatten(v, f"{prefix}[i]")
    if prefix:
        yield prefix


@pytest.fixture(scope="module")
def typable_paths():
    paths = set()
    for recipe in RECIPES:
        args = ["fit", "--config", recipe] if "ablations" not in recipe else None
        if args is None:  # override files need their base recipe
            base = "weighted_grpo.yaml" if "per_prompt" in recipe else "weighted_meta.yaml"
            args = ["fit", "--config", os.path.join(ROOT, "recipes", base), "--config", recipe]
        paths |= set(_flatten(printed_config(args)))
    return paths


def _quoted_paths():
    found = {}
    for path in glob.glob(os.path.join(PACKAGE, "**", "*.py"), recursive=True):
        text = open(path).read()
        key = re.search(r'^_KEY = "([^"]+)"', text, re.M)
        for match in QUOTED.finditer(text):
            quoted = match.group(1)
            if quoted.startswith("{_KEY}"):
                if key is None:
                    continue
                quoted = key.group(1) + quoted[len("{_KEY}") :]
            quoted = re.sub(r"\[\d+\]", "[i]", quoted)  # a list entry's index: any index is typable
            if quoted.endswith(".") or quoted in RUNTIME or "{" in quoted:
                continue
            if not quoted.startswith("trainer.") and ".init_args" not in quoted:
                continue  # an object's attribute (model.config...), not a config key
            found.setdefault(quoted, os.path.relpath(path, ROOT))
    return found


def test_every_quoted_key_is_a_typable_path(typable_paths):
    quoted = _quoted_paths()
    assert len(quoted) > 30  # the scan found the messages
    missing = {k: where for k, where in quoted.items() if k not in typable_paths}
    assert not missing, missing


def test_no_message_names_a_class_instead_of_a_path():
    offenders = []
    for path in glob.glob(os.path.join(PACKAGE, "**", "*.py"), recursive=True):
        for n, line in enumerate(open(path), 1):
            if re.search(r"(?<!`)`(MetaLoop|ParetoEvaluation|policy|scalarizer)\.[a-z_]+", line):
                offenders.append(f"{os.path.relpath(path, ROOT)}:{n}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
