"""The printed tables and the ratios they show (pure functions of the summaries)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .measure import ratio

SIDE_NAMES = {
    "ours": "ours", "trl": "TRL", "bare": "limit", "trl_defaults": "TRL-def", "ours_static": "static",
    "ours_static_eager": "st-eag", "ours_continuous": "cb", "ours_full_logits": "full-lg",
}  # fmt: skip
"""Side key -> column name (``bare`` is the limit column; ``ours`` runs the default generation backend, the
``ours_<backend>`` sides the other backends)."""

TRL_GOAL, LIMIT_GOAL = 1.5, 1.2

RATIO_COLUMNS = (
    ("trl/ours", "TRL/ours", "trl"),
    ("ours/limit", "ours/limit", "bare"),
    ("trl_defaults/ours", "TRL-def/ours", "trl_defaults"),
)
"""(ratio key, column title, the side besides ours that it needs)."""


def cell_ratios(summaries: dict[str, dict[str, float]], clock: str = "wall") -> dict[str, float | None]:
    """TRL / ours and ours / limit (and TRL-with-defaults / ours) per step and per generated token, and for
    every other generation backend ``ours / ours_<backend>`` (above 1: the backend is faster than the default).

    Args:
        summaries: side key -> :func:`~.measure.summarize` output.
        clock: ``"wall"`` or ``"cpu"``.

    Example:
        >>> s = {"ours": {"wall_step": 2.0, "wall_token": 0.1}, "trl": {"wall_step": 3.0, "wall_token": 0.2},
        ...      "bare": {"wall_step": 1.0, "wall_token": 0.05}}
        >>> r = cell_ratios(s)
        >>> r["trl/ours step"], r["trl/ours token"], r["ours/limit token"], r["trl_defaults/ours step"]
        (1.5, 2.0, 2.0, None)
        >>> cell_ratios({**s, "ours_static": {"wall_step": 1.0, "wall_token": 0.1}})["ours/ours_static step"]
        2.0
    """

    def get(side: str, unit: str) -> float | None:
        return summaries.get(side, {}).get(f"{clock}_{unit}")

    out: dict[str, float | None] = {}
    for unit in ("step", "token"):
        out[f"trl/ours {unit}"] = ratio(get("trl", unit), get("ours", unit))
        out[f"ours/limit {unit}"] = ratio(get("ours", unit), get("bare", unit))
        out[f"trl_defaults/ours {unit}"] = ratio(get("trl_defaults", unit), get("ours", unit))
        for side in backend_sides(summaries):
            out[f"ours/{side} {unit}"] = ratio(get("ours", unit), get(side, unit))
    return out


def backend_sides(sides: Iterable[str]) -> list[str]:
    """The sides that run our module with another generation backend than the default.

    Example:
        >>> backend_sides(["ours", "ours_static", "trl"])
        ['ours_static']
    """
    return [s for s in sides if s.startswith("ours_")]


def goal_marks(ratios: dict[str, float | None]) -> str:
    """Which goals a cell misses, judged per generated token (``ok`` when it meets every one measured).

    Example:
        >>> goal_marks({"trl/ours token": 1.2, "ours/limit token": 1.1})
        'TRL<1.5x'
        >>> goal_marks({"trl/ours token": None, "ours/limit token": 1.1})
        'ok'
    """
    misses = []
    trl, limit = ratios.get("trl/ours token"), ratios.get("ours/limit token")
    if trl is not None and trl < TRL_GOAL:
        misses.append(f"TRL<{TRL_GOAL}x")
    if limit is not None and limit > LIMIT_GOAL:
        misses.append(f"limit>{LIMIT_GOAL}x")
    return " ".join(misses) or "ok"


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def grid_table(cells: Sequence[dict], sides: Sequence[str], clock: str = "wall") -> str:
    """One row per cell: seconds per step, tokens per step, the ratios (per step, per token) and the goals.

    Args:
        cells: records with ``key``, ``summaries`` (side -> summary) and ``notes``.
        sides: the side keys measured, in column order.
        clock: ``"wall"`` or ``"cpu"`` seconds.
    """
    names = [SIDE_NAMES[s] for s in sides]
    ratio_cols = [(key, title) for key, title, side in RATIO_COLUMNS if side in sides and "ours" in sides]
    if "ours" in sides:
        ratio_cols += [(f"ours/{side}", f"ours/{SIDE_NAMES[side]}") for side in backend_sides(sides)]
    w_time, w_tok, w_ratio = 9 * len(names), 8 * len(names), 13
    head1 = f"{'cell':<24} | {'s/step (' + clock + ')':^{w_time}} | {'tokens/step':^{w_tok}}"
    head2 = f"{'':<24} | " + "".join(f"{n:>9}" for n in names) + " | " + "".join(f"{n:>8}" for n in names)
    for _, title in ratio_cols:
        head1 += f" | {title:^{w_ratio}}"
        head2 += f" | {'step   token':>{w_ratio}}"
    head1 += " | goals (per token)"
    lines = [head1, head2, "-" * len(head1)]
    for cell in cells:
        s, r = cell["summaries"], cell_ratios(cell["summaries"], clock)
        row = f"{cell['key']:<24} | " + "".join(
            f"{_num(s.get(x, {}).get(clock + '_step'), '.4f'):>9}" for x in sides
        )
        row += " | " + "".join(f"{_num(s.get(x, {}).get('tokens_step'), '.1f'):>8}" for x in sides)
        for key, _ in ratio_cols:
            step, token = _num(r.get(key + " step"), ".2f") + "x", _num(r.get(key + " token"), ".2f") + "x"
            row += f" | {step:>6} {token:>6}"
        row += " | " + goal_marks(r)
        if cell["notes"]:
            row += "  [" + "; ".join(cell["notes"]) + "]"
        lines.append(row)
    return "\n".join(lines)


def goal_summary(cells: Sequence[dict]) -> str:
    """How many cells meet each goal (wall clock, per generated token)."""
    trl = [cell_ratios(c["summaries"])["trl/ours token"] for c in cells]
    limit = [cell_ratios(c["summaries"])["ours/limit token"] for c in cells]
    trl, limit = [x for x in trl if x is not None], [x for x in limit if x is not None]
    parts = []
    if trl:
        parts.append(f"TRL/ours >= {TRL_GOAL}x in {sum(x >= TRL_GOAL for x in trl)} of {len(trl)} cells "
                     f"(range {min(trl):.2f}-{max(trl):.2f}x)")  # fmt: skip
    if limit:
        parts.append(f"ours/limit <= {LIMIT_GOAL}x in {sum(x <= LIMIT_GOAL for x in limit)} of {len(limit)} cells "
                     f"(range {min(limit):.2f}-{max(limit):.2f}x)")  # fmt: skip
    return "; ".join(parts)


def profile_table(title: str, phases: dict[str, dict[str, float]]) -> str:
    """Our phases next to the limit's, in milliseconds per step and share of our step."""
    ours, limit = phases["ours"], phases["limit"]
    total = ours["step total"] or 1.0
    lines = [title, f"  {'phase':<38} {'ours ms':>9} {'share':>6} {'limit ms':>9} {'ours - limit':>13}"]
    for name, ms in ours.items():
        other = limit.get(name)
        diff = "" if other is None else f"{ms - other:13.2f}"
        lines.append(f"  {name:<38} {ms:9.2f} {100 * ms / total:5.1f}% {_num(other, '9.2f'):>9} {diff}")
    return "\n".join(lines)


def first_step_table(cells: Sequence[dict], sides: Sequence[str]) -> str:
    """Seconds of the first step of each run (median over runs): a compiling backend compiles there.

    Args:
        cells: records with ``key`` and ``runs`` (side -> list of runs, each with its per-step ``wall``).
        sides: the side keys measured, in column order.
    """
    names = [SIDE_NAMES[s] for s in sides]
    lines = [f"{'first step, s (wall)':<24} | " + "".join(f"{n:>9}" for n in names)]
    lines.append("-" * len(lines[0]))
    for cell in cells:
        row = f"{cell['key']:<24} | "
        for side in sides:
            firsts = sorted(run["wall"][0] for run in cell["runs"].get(side, []) if run["wall"])
            row += f"{_num(firsts[len(firsts) // 2] if firsts else None, '.2f'):>9}"
        lines.append(row)
    return "\n".join(lines)
