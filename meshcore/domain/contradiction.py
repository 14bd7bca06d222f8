"""When two decisions contradict each other: the same subject, opposite stances.

A heuristic over words, with no model: a decision's subject is its normalised text
(restatement.py) without negation words (not, no, never, avoid, without; "don't" counts as
"do not", and a "do"/"does"/"did" just before a negation goes with it), and its stance is
negated when it holds an odd number of them. "Send on Tuesday" and "Don't send on Tuesday"
contradict; so do "Orbit is free" and "Orbit is not free".

What it misses, and what it gets wrong:
- Different words for one subject: "Avoid emojis" and "Use emojis" ("use" is a word of the
  subject), "Send on Tuesday" and "Never send on Tuesdays", "Skip Tuesday" and "Send on
  Tuesday". Antonyms ("cheap"/"expensive") and numbers ("$4"/"$5") are not opposites to it.
- A negation used for emphasis ("No, never send on Tuesday" has two, so reads as positive),
  or a negation of a part ("Send not only on Tuesday") flips the whole stance.
- Tense and person count as words: "We did not ship" and "We shipped" differ in subject.
So a link says "look at these two", never "one of them is wrong".
"""

from __future__ import annotations

from dataclasses import dataclass

from meshcore.domain.memory import MemoryItem, MemoryType
from meshcore.domain.restatement import words

CONTRADICTING = frozenset({MemoryType.DECISION})
NEGATIONS = frozenset({"not", "no", "never", "avoid", "without"})
# Auxiliaries that only carry a negation: "do not send" is the negation of "send".
AUXILIARIES = frozenset({"do", "does", "did"})


@dataclass(frozen=True)
class Stance:
    subject: str  # the normalised text without its negations; empty if nothing else is left
    negated: bool


def stance(text: str) -> Stance:
    """What a text is about, and whether it says no to it."""
    kept: list[str] = []
    negations = 0
    previous = ""
    for word in words(text):
        if word in NEGATIONS:
            negations += 1
            if previous in AUXILIARIES and kept and kept[-1] == previous:
                kept.pop()
        else:
            kept.append(word)
        previous = word
    return Stance(" ".join(kept), negations % 2 == 1)


def may_contradict(item: MemoryItem) -> bool:
    """Whether the item's type is one whose items can contradict each other (decisions)."""
    return item.type in CONTRADICTING


def contradicts(text: str, other: str) -> bool:
    """Whether two texts take opposite stances on one subject."""
    mine, theirs = stance(text), stance(other)
    return bool(mine.subject) and mine.subject == theirs.subject and mine.negated != theirs.negated
