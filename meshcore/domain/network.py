"""Networks and their agents."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID, uuid4

from meshcore.domain.agent_types import COORDINATOR, CRITIC
from meshcore.domain.errors import Conflict, InvalidInput, NotFound
from meshcore.domain.lifetimes import MemoryPolicy
from meshcore.domain.usage import Budget, Usage
from meshcore.domain.webhooks import Webhook

DEFAULT_TENANT = "default"


class AgentType(enum.StrEnum):
    """The built-in types every tenant has; a tenant's own types are names in its catalog."""

    COORDINATOR = "coordinator"
    CONTENT = "content"
    DESIGN = "design"
    ANALYTICS = "analytics"
    PERSONALIZATION = "personalization"
    RESEARCH = "research"
    CRITIC = "critic"


# The coordinator plans and synthesises, the critic reviews; only the others take subtasks.
SPECIALISTS = frozenset(AgentType) - {AgentType.COORDINATOR, AgentType.CRITIC}
DEFAULT_TEAM: tuple[str, ...] = tuple(AgentType)
# A network lacking one of these accepts tasks it can never finish, so it is refused.
REQUIRED_ROLES: tuple[str, ...] = (COORDINATOR, CRITIC)
_PURPOSE = {COORDINATOR: "a coordinator to plan", CRITIC: "a critic to review"}


class AgentStatus(enum.StrEnum):
    IDLE = "idle"
    BUSY = "busy"
    DISABLED = "disabled"


@dataclass(frozen=True)
class ModelConfig:
    chain: tuple[str, ...] | None = None  # None: the network's chain, else the settings' default
    temperature: float = 0.3
    max_tokens: int = 1024


@dataclass(frozen=True)
class AgentMetrics:
    calls: int = 0
    failures: int = 0
    latency_ms_total: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    in_flight: int = 0

    @property
    def mean_latency_ms(self) -> float:
        return self.latency_ms_total / self.calls if self.calls else 0.0


@dataclass(frozen=True)
class Agent:
    id: UUID
    tenant_id: str
    network_id: UUID
    name: str
    type: str  # a name in the tenant's catalog of agent types
    created_at: datetime
    model: ModelConfig = ModelConfig()
    capabilities: tuple[str, ...] = ()
    is_disabled: bool = False
    metrics: AgentMetrics = AgentMetrics()
    queue: str = ""  # where its type's steps run, as the catalog says (not stored with it)

    @property
    def status(self) -> AgentStatus:
        if self.is_disabled:
            return AgentStatus.DISABLED
        return AgentStatus.BUSY if self.metrics.in_flight > 0 else AgentStatus.IDLE


# How long a plan may wait for a person to approve it: up to a week.
MAX_APPROVAL_SECONDS = 604_800


@dataclass(frozen=True)
class Approval:
    """Whether each iteration's plan waits for a person to approve it, and for how long."""

    plan: bool = False
    timeout_seconds: int = 3600


@dataclass(frozen=True)
class NetworkConfig:
    max_iterations: int = 3
    timeout_seconds: int = 300
    quality_threshold: float = 0.8
    model_chain: tuple[str, ...] | None = None
    budget: Budget = Budget()
    webhook: Webhook | None = None  # where its tasks' events go, unless a task names its own
    approval: Approval = Approval()
    memory: MemoryPolicy = MemoryPolicy()  # its memory's lifetimes and bound (lifetimes.py)

    def __post_init__(self) -> None:
        if not 1 <= self.max_iterations <= 10:
            raise InvalidInput("config.max_iterations", "must be between 1 and 10")
        if not 1 <= self.timeout_seconds <= 86_400:
            raise InvalidInput("config.timeout_seconds", "must be between 1 and 86400")
        if not 0.0 <= self.quality_threshold <= 1.0:
            raise InvalidInput("config.quality_threshold", "must be between 0 and 1")
        if self.budget.tokens is not None and self.budget.tokens < 1:
            raise InvalidInput("config.budget.tokens", "must be at least 1")
        if self.budget.cost_usd is not None and self.budget.cost_usd <= 0:
            raise InvalidInput("config.budget.cost_usd", "must be more than 0")
        if self.webhook is not None:
            self.webhook.check("config.webhook")
        if not 1 <= self.approval.timeout_seconds <= MAX_APPROVAL_SECONDS:
            raise InvalidInput(
                "config.approval.timeout_seconds", f"must be between 1 and {MAX_APPROVAL_SECONDS}"
            )
        self.memory.check("config.memory")


@dataclass
class Network:
    """The aggregate a tenant creates: a team of agents with one configuration."""

    id: UUID
    tenant_id: str
    name: str
    description: str
    config: NetworkConfig
    created_at: datetime
    updated_at: datetime
    agents: list[Agent] = field(default_factory=list)
    usage: Usage = Usage()  # the sum over its tasks, as read from the record
    # Its webhooks' signing secret: set when it is made or rotated, and shown then only.
    webhook_secret: str | None = field(default=None, repr=False)

    @classmethod
    def create(
        cls,
        *,
        tenant_id: str,
        name: str,
        description: str,
        config: NetworkConfig,
        now: datetime,
    ) -> Network:
        return cls(uuid4(), tenant_id, name, description, config, now, now)

    def new_agent(
        self,
        *,
        name: str,
        type: str,
        now: datetime,
        model: ModelConfig | None = None,
        capabilities: tuple[str, ...] = (),
        queue: str = "",
    ) -> Agent:
        agent = Agent(
            id=uuid4(),
            tenant_id=self.tenant_id,
            network_id=self.id,
            name=name,
            type=type,
            created_at=now,
            model=model or ModelConfig(),
            capabilities=capabilities,
            queue=queue,
        )
        self.agents.append(agent)
        return agent

    def check_team(self) -> None:
        """Refuse a team that could not finish a task: InvalidInput naming the missing roles."""
        if missing := self.missing_roles():
            needed = " and ".join(_PURPOSE[r] for r in REQUIRED_ROLES)
            lacking = " and ".join(f"no {r}" for r in missing)
            raise InvalidInput("agents", f"a network needs {needed}; this team has {lacking}")

    def remove_agent(self, agent_id: UUID) -> Agent:
        """Take an agent off the team, unless the team would lose its last of a needed role.

        A Conflict, not InvalidInput: the request is sound, the team's current state forbids
        it, and adding another agent of the role first makes the same request succeed.
        """
        agent = next((a for a in self.agents if a.id == agent_id), None)
        if agent is None:
            raise NotFound("agent", agent_id)
        rest = [a for a in self.agents if a.id != agent_id]
        lost = [r for r in _missing_in(rest) if r not in self.missing_roles()]
        if lost:
            role = lost[0]
            raise Conflict(
                f"network {self.id} would be left with no {role}: add another {role} agent"
                f" before removing {agent.name!r}"
            )
        self.agents = rest
        return agent

    def missing_roles(self) -> list[str]:
        return _missing_in(self.agents)

    def agent_types(self) -> frozenset[str]:
        """Types of the agents able to take work (disabled ones excluded)."""
        return frozenset(a.type for a in self.agents if not a.is_disabled)

    def agent_of(self, agent_type: str) -> Agent | None:
        """The first enabled agent of a type: it takes that type's steps."""
        return Network.agent_of_in(self.agents, agent_type)

    @staticmethod
    def agent_of_in(agents: list[Agent], agent_type: str) -> Agent | None:
        return next((a for a in agents if a.type == agent_type and not a.is_disabled), None)


def _missing_in(agents: list[Agent]) -> list[str]:
    # Disabled agents take no steps (agent_of skips them), so they do not fill a role.
    present = {a.type for a in agents if not a.is_disabled}
    return [r for r in REQUIRED_ROLES if r not in present]
