"""meshcli/submit.py: `--context KEY=VALUE` as the task's context."""

from __future__ import annotations

import click
import pytest

from meshcli.submit import parse_context


def test_each_pair_becomes_a_key_with_a_string_value() -> None:
    pairs = ("segment=developers", "tone = warm", "empty=")

    assert parse_context(pairs) == {"segment": "developers", "tone": " warm", "empty": ""}


def test_the_value_is_everything_after_the_first_equals_sign() -> None:
    assert parse_context(["url=https://x.test/?a=1"]) == {"url": "https://x.test/?a=1"}


def test_no_pairs_is_no_context() -> None:
    assert parse_context([]) == {}


@pytest.mark.parametrize(
    ("pairs", "problem"),
    [
        (["segment"], "'segment' is not KEY=VALUE"),
        (["=developers"], "'=developers' is not KEY=VALUE"),
        (["a=1", "a=2"], "'a' is given twice"),
    ],
)
def test_a_pair_that_names_no_key_or_a_key_twice_is_refused(pairs: list[str], problem: str) -> None:
    with pytest.raises(click.BadParameter, match=problem):
        parse_context(pairs)
