"""The coordinator: breaks a task into a plan over the team, then synthesises the results."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from meshcore.agents.profile import (
    AgentProfile,
    bullet,
    context_text,
    fenced,
    json_part,
    system_prompt,
)
from meshcore.domain.agent_types import AgentTypeDef, is_specialist
from meshcore.domain.errors import InvalidPlan
from meshcore.domain.memory import MemoryType
from meshcore.domain.network import AgentType
from meshcore.domain.plan import PlannedSubtask, parse_plan
from meshcore.domain.task import StepRecord
from meshcore.ports import Message

PROFILE = AgentProfile(
    type=AgentType.COORDINATOR,
    role=(
        "You are the coordinator of a team of specialist agents. You break a task into "
        "subtasks for the specialists, with dependencies where one needs another's work, "
        "and you merge their results into one answer."
    ),
    capabilities=("planning", "delegation", "synthesis"),
    reads=(MemoryType.FACT, MemoryType.DECISION, MemoryType.FEEDBACK),
    writes=MemoryType.DECISION,
    answer_format="plan_json",
    confidence=0.8,
)

_PLAN_SHAPE = (
    'Reply with JSON only: {"subtasks": [{"key": "research", "agent": "research", '
    '"description": "...", "depends_on": []}, ...]}. Keys are lowercase words; '
    "depends_on lists keys of subtasks whose output this one needs."
)


def plan_messages(
    *,
    task: str,
    context: dict[str, object],
    agents: Iterable[AgentTypeDef],
    iteration: int,
    feedback: str | None,
) -> list[Message]:
    """The prompt that asks for a plan over the team's specialists, each with what it does;
    a revision carries the critic's feedback."""
    available = sorted((a for a in agents if is_specialist(a.name)), key=lambda a: a.name)
    lines = [
        f"Task: {task}",
        f"Available agents: {', '.join(a.name for a in available)}",
        "What each agent does:",
        *(_described(a) for a in available),
        f"Iteration: {iteration}",
    ]
    if context:
        lines += ["Context:", fenced("context", context_text(context))]
    if feedback:
        lines += ["Critic feedback to address in this revision:", fenced("critic", feedback)]
    lines.append(_PLAN_SHAPE)
    return [Message("system", PROFILE.system_prompt()), Message("user", "\n".join(lines))]


def _described(agent: AgentTypeDef) -> str:
    skills = f" (capabilities: {', '.join(agent.capabilities)})" if agent.capabilities else ""
    return bullet(f"{agent.name}: ", agent.description + skills)


def read_plan(text: str) -> list[PlannedSubtask]:
    """Parse a model's plan answer, or raise InvalidPlan saying what is wrong with it."""
    try:
        data = json.loads(json_part(text))
    except json.JSONDecodeError as exc:
        raise InvalidPlan(f"the coordinator's plan is not JSON: {exc.msg}") from exc
    return parse_plan(data)


def synthesis_messages(
    *, task: str, steps: Sequence[StepRecord], feedback: str | None
) -> list[Message]:
    """The prompt that merges the specialists' outputs into one answer."""
    results = "\n".join(bullet(f"[{s.agent_type}:{s.key}] ", s.output) for s in steps)
    lines = [f"Task: {task}", "Merge these specialist results into one answer:"]
    lines.append(fenced("agents", results))
    if feedback:
        lines += ["Address the critic's feedback:", fenced("critic", feedback)]
    system = system_prompt(PROFILE.role, "synthesis")
    return [Message("system", system), Message("user", "\n".join(lines))]
