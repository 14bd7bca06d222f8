"""meshcli/tables.py: the aligned tables and short cells the API-reading commands print."""

from __future__ import annotations

from meshcli.tables import cut, page_note, table, when
from meshclient import Page


def test_a_table_aligns_each_column_under_its_header_and_shows_blanks_as_dashes() -> None:
    lines = table(("ID", "STATUS", "DESCRIPTION"), [("t1", "running", None), ("t22", "", "x")])

    assert lines.splitlines() == [
        "ID   STATUS   DESCRIPTION",
        "t1   running  -",
        "t22  -        x",
    ]


def test_a_page_among_others_says_where_it_is_and_how_to_see_more() -> None:
    first = Page(["a"], total=45, total_pages=3, page=1, next_page=2)
    last = Page(["z"], total=45, total_pages=3, page=3)

    assert page_note(first, "tasks") == "page 1 of 3 (45 tasks); --page 2 for more"
    assert page_note(last, "tasks") == "page 3 of 3 (45 tasks)"
    assert page_note(Page(["a"], total=1, total_pages=1, page=1), "tasks") is None


def test_long_text_is_cut_to_one_line() -> None:
    assert cut("Write the\nlaunch email", 40) == "Write the launch email"
    assert cut("Write the launch email", 10) == "Write the…"
    assert cut(None, 10) == ""


def test_times_read_to_the_second() -> None:
    assert when("2026-12-07T02:03:34.590107+00:00") == "2026-12-07 02:03:34"
