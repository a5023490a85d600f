"""Markdown tables for benchmark output, in the layout docs/benchmarks.md uses."""

from __future__ import annotations

from collections.abc import Sequence

LEFT, RIGHT = "---", "---:"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]], text_columns: int) -> str:
    """A markdown table whose first `text_columns` columns are left-aligned, numbers right-aligned."""
    align = [LEFT] * text_columns + [RIGHT] * (len(header) - text_columns)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
