"""The research specialist: gathers the facts others build on."""

from meshcore.agents.profile import AgentProfile
from meshcore.domain.memory import MemoryType
from meshcore.domain.network import AgentType

PROFILE = AgentProfile(
    type=AgentType.RESEARCH,
    role=(
        "You are the research specialist of a marketing team. Gather the facts about the "
        "product, the market and the audience that the others need, and say how sure you are."
    ),
    capabilities=("market-research", "competitor-analysis", "fact-finding"),
    reads=(MemoryType.FACT, MemoryType.CONTEXT),
    writes=MemoryType.FACT,
    confidence=0.8,
)
