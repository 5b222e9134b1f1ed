"""The old ``python -m pareto_lightning.models.*`` commands warn and run the scripts of ``recipes/smollm2``."""

import subprocess
import sys

import pytest

from pareto_lightning.models import _moved, preference_stage, smollm2


@pytest.mark.parametrize(
    ("module", "script"), [(smollm2, "fetch"), (preference_stage, "preference_stage")], ids=["fetch", "stage"]
)
def test_the_old_entry_point_warns_and_calls_the_new_main(module, script, monkeypatch):
    calls = []

    class Script:
        @staticmethod
        def main(argv):
            calls.append(argv)
            return "done"

    monkeypatch.setattr(_moved, "recipe_script", lambda name: Script if name == script else None)
    with pytest.warns(DeprecationWarning, match=rf"run `python recipes/smollm2/{script}.py` instead"):
        assert module.main(["--out", "x"]) == "done"
    assert calls == [["--out", "x"]]


def test_the_scripts_are_found_next_to_the_package():
    assert _moved.recipe_script("fetch").COMMAND == "python recipes/smollm2/fetch.py"
    with pytest.raises(FileNotFoundError, match=r"recipes/smollm2/nothing.py is not next to this package"):
        _moved.recipe_script("nothing")


def test_python_m_shows_the_warning():
    done = subprocess.run([sys.executable, "-m", "pareto_lightning.models.smollm2", "--help"],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0 and "usage: python recipes/smollm2/fetch.py" in done.stdout
    assert "models.smollm2` is deprecated" in done.stderr and "python recipes/smollm2/fetch.py" in done.stderr
