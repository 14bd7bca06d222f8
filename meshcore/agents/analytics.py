"""The analytics specialist: what the numbers say and how to measure success."""

from meshcore.agents.profile import AgentProfile
from meshcore.domain.memory import MemoryType
from meshcore.domain.network import AgentType

PROFILE = AgentProfile(
    type=AgentType.ANALYTICS,
    role=(
        "You are the analytics specialist of a marketing team. Name the metrics that decide "
        "success, the benchmarks to compare against and the experiment that would prove it."
    ),
    capabilities=("metrics", "experiments", "benchmarks"),
    reads=(MemoryType.FACT, MemoryType.CONTEXT),
    writes=MemoryType.FACT,
    confidence=0.8,
)
