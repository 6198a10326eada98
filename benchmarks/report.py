"""The ratio table: every client's number divided by the reference client's, from one run.

Absolute times on a shared machine drift by tens of percent between runs; ratios measured
against the same IOC minutes apart are much steadier. So the table shows ratios, plus one
column of absolute numbers for the reference client to keep the scale in view. A cell that
could not be measured shows its error; the full messages follow the table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .clients import CLIENTS, REFERENCE
from .operations import REPORTED

Results = Mapping[str, Mapping[str, Any]]
# the raw-socket programs every pvflow row is also set against: (pvflow client, its floor)
FLOORS = (("pvflow", "floor-ca"), ("pvflow-pva", "floor-pva"))


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None


def _absolute(value: float, unit: str) -> str:
    if unit == "%":
        return f"{value:.0f}%"
    if unit.endswith("/s"):
        return f"{value / 1000:.1f}k/s"
    return f"{value:.3g} {unit}" if value < 100 else f"{value:.0f} {unit}"


def _cell(value: Any, reference: Any, metric_key: str, errors: list[str]) -> str:
    """A ratio to ``reference``, or the absolute number when there is no numeric reference."""
    number, reference_number = _number(value), _number(reference)
    metric = REPORTED[metric_key]
    if value is None:
        return "-"
    if number is None:
        text = str(value)
        if text not in errors:
            errors.append(text)
        return f"error [{errors.index(text) + 1}]"
    if metric.absolute or not reference_number:
        return _absolute(number, metric.unit)
    return f"{number / reference_number:.2f}"


def _floor_cell(value: Any, floor: Any, metric_key: str) -> str:
    """pvflow's distance to what a bare Python program achieves (rates inverted, so above 1
    is always slower than the floor)."""
    number, floor_number = _number(value), _number(floor)
    metric = REPORTED[metric_key]
    if number is None or not floor_number or metric.absolute:
        return "-"
    ratio = floor_number / number if metric.better == "higher" else number / floor_number
    return f"{ratio:.2f}" if number else "-"


def table(results: Results, ratios: bool = True) -> str:
    """A markdown table: rows are operations, columns the clients that ran, reference first.

    With ``ratios=False`` every cell is absolute (the ``--absolute`` table).
    """
    others = [key for key in CLIENTS if key in results and key != REFERENCE]
    reference = results.get(REFERENCE, {})
    has_reference = REFERENCE in results
    headings = ["operation", "better"]
    if has_reference:
        headings.append(f"{CLIENTS[REFERENCE][2]} (absolute)")
    headings += [CLIENTS[key][2] for key in others]
    floors = [(client, floor) for client, floor in FLOORS if client in results and floor in results]
    headings += [f"{CLIENTS[client][2]} / {CLIENTS[floor][2]}" for client, floor in floors]
    errors: list[str] = []
    rows = []
    for metric_key, metric in REPORTED.items():
        row = [metric.label, metric.better]
        if has_reference:
            value = reference.get(metric_key)
            row.append(_cell(value, None, metric_key, errors))
        versus = results.get(metric.versus, {}) if metric.versus else reference
        divisor = versus.get(metric_key) if ratios else None
        row += [_cell(results[key].get(metric_key), divisor, metric_key, errors) for key in others]
        row += [_floor_cell(results[client].get(metric_key), results[floor].get(metric_key),
                            metric_key) for client, floor in floors]
        rows.append(row)
    widths = [max(len(line[column]) for line in [headings, *rows]) for column in range(len(headings))]

    def render(cells: Sequence[str]) -> str:
        return "| " + " | ".join(cell.ljust(width) for cell, width in zip(cells, widths)) + " |"

    lines = [render(headings), "|" + "|".join("-" * (width + 2) for width in widths) + "|"]
    lines += [render(row) for row in rows]
    if errors:
        lines.append("")
        lines += [f"[{index}] {text}" for index, text in enumerate(errors, start=1)]
    return "\n".join(lines)


def legend(results: Results) -> str:
    """What the numbers mean, and the context a reader needs to trust them."""
    lines = []
    if REFERENCE in results:
        lines.append(f"Cells are client / {CLIENTS[REFERENCE][2]} from this run (below 1 is faster, "
                     "except rows marked 'higher'); '% delivered' and the put rate are absolute.")
    else:
        lines.append(f"{CLIENTS[REFERENCE][2]} did not run: cells are absolute numbers.")
    for metric in REPORTED.values():
        if metric.versus and metric.versus in results:
            lines.append(f"'{metric.label}' is client / {CLIENTS[metric.versus][2]} instead.")
    versions = ", ".join(f"{CLIENTS[key][2]} {results[key].get('version', '?')}"
                         for key in CLIENTS if key in results)
    lines.append(f"Versions: {versions}.")
    disorder = [CLIENTS[key][2] for key in results
                if (_number(results[key].get("monitor_out_of_order")) or 0) > 0]
    if disorder:
        lines.append("Monitor events arrived out of order for: " + ", ".join(disorder) + ".")
    return "\n".join(lines)
