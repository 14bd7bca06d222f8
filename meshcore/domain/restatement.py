"""When a memory item restates one its network holds: the same words, once normalised.

A fact or a decision said again (by a second agent, or by a client) is not kept twice: the
item that holds it takes the restatement as a verdict in its favour, as strong as the
restater's own confidence in it, and keeps the change in its history. Context and feedback
are kept each time they are written: context is one task's situation and feedback a verdict
on one piece of work, so the same words again are another situation or another verdict, not
more certainty about the first.

Normalised text: NFKC, case-folded, contractions spelled out ("don't" is "do not"), and
punctuation and whitespace collapsed to single spaces, but for punctuation between two
digits, which is part of a number ("4.99", "12:30"), a minus before a number, and the marks
that say what a number is ("5%", "#1"); symbols stay too ("$5" is not "€5"). So "Orbit ships
on 12 May." restates "orbit ships on 12 may"; "Orbit ships 12 May" does not.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import replace

from meshcore.domain.memory import MemoryItem, MemoryType

MERGING = frozenset({MemoryType.FACT, MemoryType.DECISION})

# Punctuation that changes what a number or a name means, kept wherever it stands.
_MEANINGFUL = frozenset("%‰#@&")
_APOSTROPHES = str.maketrans(dict.fromkeys("\u2018\u2019\u02bc\u00b4`", "'"))
_CONTRACTIONS = (
    (re.compile(r"\bcan't\b"), "can not"),
    (re.compile(r"\bwon't\b"), "will not"),
    (re.compile(r"\bshan't\b"), "shall not"),
    (re.compile(r"n't\b"), " not"),
)
# The same contractions typed without their apostrophe: spelled out too, so "dont" restates
# "don't" and "do not".
_BARE = {
    "cannot": ("can", "not"),
    "cant": ("can", "not"),
    "dont": ("do", "not"),
    "doesnt": ("does", "not"),
    "didnt": ("did", "not"),
    "isnt": ("is", "not"),
    "arent": ("are", "not"),
    "wasnt": ("was", "not"),
    "werent": ("were", "not"),
    "hasnt": ("has", "not"),
    "havent": ("have", "not"),
    "hadnt": ("had", "not"),
    "shouldnt": ("should", "not"),
    "wouldnt": ("would", "not"),
    "couldnt": ("could", "not"),
    "mustnt": ("must", "not"),
}


def merges(type: MemoryType) -> bool:
    """Whether items of `type` merge with their restatements (facts and decisions)."""
    return type in MERGING


def words(text: str) -> list[str]:
    """The text's words as normalisation keeps them, in order."""
    folded = unicodedata.normalize("NFKC", text).casefold().translate(_APOSTROPHES)
    for pattern, spelled in _CONTRACTIONS:
        folded = pattern.sub(spelled, folded)
    kept = []
    for i, char in enumerate(folded):
        kind = unicodedata.category(char)[0]
        if kind in "LNMS" or char in _MEANINGFUL or _in_number(folded, i):
            kept.append(char)
        else:
            kept.append(" ")
    found: list[str] = []
    for word in "".join(kept).split():
        found.extend(_BARE.get(word, (word,)))
    return found


def normalised(text: str) -> str:
    """The text as restatements are compared: its words, single-spaced."""
    return " ".join(words(text))


def restates(item: MemoryItem, other: MemoryItem) -> bool:
    """Whether `item` says again what `other` says: same network and type (one that merges),
    the same normalised text."""
    return (
        merges(item.type)
        and (item.tenant_id, item.network_id, item.type)
        == (other.tenant_id, other.network_id, other.type)
        and normalised(item.content) == normalised(other.content)
    )


def merge_signal(item: MemoryItem) -> float:
    """How strongly a restatement raises the item it restates: as strongly as the restater
    believed it (its confidence in [0, 1]), so a doubtful echo adds little."""
    return item.confidence


def merge_reason(by: str, task_id: str | None) -> str:
    """Why the item's confidence rose, as its history says: who said it again, and where."""
    return f"restated by {by} in task {task_id}" if task_id else f"restated by {by}"


def restater(item: MemoryItem) -> str:
    """Who wrote `item`, in a history's words: its agent type, else a client."""
    agent = item.metadata.get("source_agent")
    return f"the {agent} agent" if isinstance(agent, str) and agent else "a client"


def as_output(
    holder: MemoryItem,
    *,
    source_agent: str | None,
    agent_id: str | None,
    task_id: str,
    subtask: str,
    iteration: int,
) -> MemoryItem:
    """The item that holds a step's output (which restated it), as the subtasks that depend
    on the step read it: its id, content and confidence, with the metadata the step's own
    item would have had (who wrote it, in which task, subtask and iteration)."""
    step = {
        "source_agent": source_agent,
        "agent_id": agent_id,
        "task_id": task_id,
        "subtask": subtask,
        "iteration": iteration,
    }
    return replace(holder, metadata={**holder.metadata, **step})


def _in_number(text: str, i: int) -> bool:
    """Whether the punctuation at `i` belongs to a number: between two digits ("4.99"), or
    a minus before one ("-5", not the hyphen of "covid-19")."""
    if not (unicodedata.category(text[i])[0] == "P" and i < len(text) - 1):
        return False
    if not text[i + 1].isdigit():
        return False
    before = text[i - 1] if i > 0 else " "
    return before.isdigit() or (text[i] == "-" and not before.isalnum())
