"""The one Markdown table writer of the project (tables/*.md)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A GitHub-flavoured Markdown table: ``header`` cells, then one line per row (cells through ``str``).

    The caller formats numbers (e.g. ``f"{x:.3g}"``) so that each table keeps its own precision.
    """
    lines = ["| " + " | ".join(str(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
