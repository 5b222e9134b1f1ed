"""The README's API tour runs verbatim."""

import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_api_tour_runs_verbatim(capsys):
    with open(os.path.join(ROOT, "README.md")) as fh:
        readme = fh.read()
    tour = readme[readme.index("## API tour") :]
    code = re.search(r"```python\n(.*?)```", tour, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "README.md (API tour)", "exec"), namespace)  # noqa: S102 - our own README
    assert len(namespace["rollout"].completions) == 2
    assert namespace["module"].num_objectives == 2
    assert capsys.readouterr().out.startswith("[")  # the completions it prints
