"""The agent types Mesh knows: the built-in ones, and how any type becomes a prompt."""

from __future__ import annotations

from meshcore.agents import (
    analytics,
    content,
    coordinator,
    critic,
    design,
    personalization,
    research,
)
from meshcore.agents.profile import AgentProfile
from meshcore.domain.agent_types import AgentTypeDef, ModelDefaults, own_queue

PROFILES: dict[str, AgentProfile] = {
    m.PROFILE.type: m.PROFILE
    for m in (coordinator, content, design, analytics, personalization, research, critic)
}
_DESCRIPTIONS = {
    "coordinator": "Plans a task into subtasks for the specialists and merges their work.",
    "content": "Writes the copy: subject lines, body text, calls to action.",
    "design": "Lays out what the reader sees: structure, visual hierarchy, components.",
    "analytics": "Defines how success is measured: metrics, targets, tests.",
    "personalization": "Tailors the message to audience segments.",
    "research": "Gathers facts about the product, the market and the audience.",
    "critic": "Reviews the team's answer with a score and feedback for a revision.",
}
# Every tenant's catalog starts with these; they cannot be edited (copy one to a new name).
BUILTINS: dict[str, AgentTypeDef] = {
    p.type: AgentTypeDef(
        name=p.type,
        description=_DESCRIPTIONS[p.type],
        role=p.role,
        capabilities=p.capabilities,
        reads=p.reads,
        writes=p.writes,
        model=ModelDefaults(),
        queue=own_queue(p.type),
        confidence=p.confidence,
        is_builtin=True,
    )
    for p in PROFILES.values()
}


def profile_for(agent_type: str | AgentTypeDef) -> AgentProfile:
    """The prompt-side view of a type: a built-in's own profile, or one a definition makes."""
    if isinstance(agent_type, str):
        return PROFILES[agent_type]
    if agent_type.is_builtin:
        return PROFILES[agent_type.name]
    return AgentProfile(
        type=agent_type.name,
        role=agent_type.role,
        capabilities=agent_type.capabilities,
        reads=agent_type.reads,
        writes=agent_type.writes,
        answer_format=agent_type.answer_format,
        confidence=agent_type.confidence,
        answer_schema=agent_type.answer,
    )


__all__ = ["BUILTINS", "PROFILES", "AgentProfile", "profile_for"]
