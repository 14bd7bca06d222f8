"""What the API-reading commands print for people: aligned tables and short cells."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from meshclient import Page


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """The rows as columns aligned under a header line; an empty cell shows as `-`."""
    cells = [list(header)] + [[_cell(value) for value in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    )


def echo_page(
    page: Page[object],
    header: Sequence[str],
    rows: Sequence[Sequence[object]],
    *,
    noun: str,
    none: str,
) -> None:
    """Print a page of a list as a table with where it sits among the pages, or `none`."""
    if not page.items:
        click.echo(none)
        return
    click.echo(table(header, rows))
    if note := page_note(page, noun):
        click.echo(note)


def page_note(page: Page[object], noun: str) -> str | None:
    """Where a page sits among the others, when there are others."""
    if page.total_pages is None or page.total_pages <= 1:
        return None
    note = f"page {page.page or 1} of {page.total_pages} ({page.total} {noun})"
    return note + (f"; --page {page.next_page} for more" if page.next_page else "")


def when(at: object) -> str:
    """An ISO 8601 timestamp to the second, as people read it."""
    try:
        return datetime.fromisoformat(str(at)).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return str(at)


def cut(text: object, width: int) -> str:
    """A text on one line, cut to `width` characters."""
    flat = re.sub(r"\s+", " ", str(text or "")).strip()
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _cell(value: object) -> str:
    return "-" if value is None or value == "" else str(value)
