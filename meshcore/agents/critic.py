"""The critic: reviews the synthesis with a score in [0, 1] and feedback for a revision."""

from __future__ import annotations

import json
from dataclasses import dataclass

from meshcore.agents.profile import AgentProfile, fenced, json_part
from meshcore.domain.errors import MeshError
from meshcore.domain.memory import MemoryType
from meshcore.domain.network import AgentType
from meshcore.ports import Message

PROFILE = AgentProfile(
    type=AgentType.CRITIC,
    role=(
        "You are the critic of a team of specialist agents. Judge the team's answer against "
        "the task: is it correct, complete, on brand and ready to send? Be specific."
    ),
    capabilities=("review", "quality-scoring", "feedback"),
    reads=(MemoryType.FACT, MemoryType.DECISION),
    writes=MemoryType.FEEDBACK,
    answer_format="verdict_json",
    confidence=0.8,
)


class InvalidVerdict(MeshError):
    """The critic's answer is not a score and feedback."""


@dataclass(frozen=True)
class Verdict:
    score: float
    feedback: str


def review_messages(*, task: str, answer: str, iteration: int) -> list[Message]:
    lines = [
        f"Task: {task}",
        f"Iteration: {iteration}",
        "Answer to review:",
        fenced("answer", answer),
        'Reply with JSON only: {"score": <0..1>, "feedback": "<what to improve>"}',
    ]
    system = PROFILE.system_prompt()
    return [Message("system", system), Message("user", "\n".join(lines))]


def read_verdict(text: str) -> Verdict:
    try:
        data = json.loads(json_part(text))
    except json.JSONDecodeError as exc:
        raise InvalidVerdict(f"the critic's verdict is not JSON: {exc.msg}") from exc
    if not isinstance(data, dict):
        raise InvalidVerdict("the critic's verdict must be a JSON object")
    score, feedback = data.get("score"), data.get("feedback", "")
    if isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 1:
        raise InvalidVerdict("the critic's score must be a number between 0 and 1")
    if not isinstance(feedback, str):
        raise InvalidVerdict("the critic's feedback must be text")
    return Verdict(float(score), feedback)
