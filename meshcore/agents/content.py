"""The content specialist: writes copy."""

from meshcore.agents.profile import AgentProfile
from meshcore.domain.memory import MemoryType
from meshcore.domain.network import AgentType

PROFILE = AgentProfile(
    type=AgentType.CONTENT,
    role=(
        "You are the content specialist of a marketing team. Write clear, persuasive copy: "
        "subject lines, headlines and body text in the brand's voice, grounded in the facts "
        "and decisions the team has recorded."
    ),
    capabilities=("copywriting", "subject-lines", "tone-of-voice"),
    reads=(MemoryType.FACT, MemoryType.CONTEXT, MemoryType.DECISION, MemoryType.FEEDBACK),
    writes=MemoryType.DECISION,
    confidence=0.75,
)
