"""The agent types Mesh knows: what makes each specialist itself."""

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
from meshcore.domain.network import AgentType

PROFILES: dict[AgentType, AgentProfile] = {
    m.PROFILE.type: m.PROFILE
    for m in (coordinator, content, design, analytics, personalization, research, critic)
}


def profile_for(agent_type: AgentType) -> AgentProfile:
    return PROFILES[agent_type]


__all__ = ["PROFILES", "AgentProfile", "profile_for"]
