"""Plain-text tables for the command lines (numbers right-aligned, ``-`` for missing values)."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

__all__ = ["format_cell", "format_table"]


def format_cell(value: Any, digits: int = 4) -> str:
    """``-`` for None, fixed digits for floats, ``str`` otherwise."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str, int]]) -> str:
    """``columns`` = ``(key, header, digits)``; text columns (the first) left-aligned."""
    cells = [[format_cell(row.get(key), digits) for key, _, digits in columns] for row in rows]
    headers = [header for _, header, _ in columns]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(values):
        return "  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(values, widths))).rstrip()

    return "\n".join([line(headers)] + [line(r) for r in cells]) + "\n"
