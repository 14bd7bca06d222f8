"""The personalization specialist: who the audience is and what each segment needs."""

from meshcore.agents.profile import AgentProfile
from meshcore.domain.memory import MemoryType
from meshcore.domain.network import AgentType

PROFILE = AgentProfile(
    type=AgentType.PERSONALIZATION,
    role=(
        "You are the personalization specialist of a marketing team. Describe the target "
        "segment, what it cares about, and how the message should vary for it."
    ),
    capabilities=("segmentation", "targeting", "dynamic-content"),
    reads=(MemoryType.FACT, MemoryType.CONTEXT, MemoryType.FEEDBACK),
    writes=MemoryType.CONTEXT,
    confidence=0.7,
)
