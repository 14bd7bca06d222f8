"""The design specialist: layout and visual hierarchy."""

from meshcore.agents.profile import AgentProfile
from meshcore.domain.memory import MemoryType
from meshcore.domain.network import AgentType

PROFILE = AgentProfile(
    type=AgentType.DESIGN,
    role=(
        "You are the design specialist of a marketing team. Propose layout, visual hierarchy, "
        "imagery and calls to action that make the message easy to act on, on any screen."
    ),
    capabilities=("layout", "visual-hierarchy", "accessibility"),
    reads=(MemoryType.CONTEXT, MemoryType.DECISION, MemoryType.FEEDBACK),
    writes=MemoryType.DECISION,
    confidence=0.7,
)
