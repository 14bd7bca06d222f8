"""Creating, reading and deleting networks and their agents."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from uuid import UUID

import structlog

from meshcore.domain.agent_types import GENERAL_QUEUE, AgentTypeDef
from meshcore.domain.errors import InvalidInput, MemoryViewUnavailable, MeshError
from meshcore.domain.idempotency import Created, IdempotencyKey
from meshcore.domain.network import (
    DEFAULT_TEAM,
    Agent,
    ModelConfig,
    Network,
    NetworkConfig,
)
from meshcore.domain.quotas import DEFAULT_QUOTAS, Quota, Quotas
from meshcore.domain.webhooks import new_secret
from meshcore.ports import (
    AgentActivity,
    Clock,
    MemoryStore,
    Page,
    TaskRevisions,
    UnitOfWorkFactory,
    WebhookSender,
)
from meshcore.services.agent_types import catalog_of, current_types
from meshcore.services.idempotency import DEFAULT_LIFETIME, earlier_create
from meshcore.services.quotas import reserve
from meshcore.services.webhooks import refusal_of

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class AgentSpec:
    type: str  # a name in the tenant's catalog
    name: str | None = None
    model: ModelConfig | None = None
    capabilities: tuple[str, ...] | None = None


class NetworkService:
    def __init__(
        self,
        *,
        tenant_id: str,
        uow: UnitOfWorkFactory,
        memory: MemoryStore,
        activity: AgentActivity,
        clock: Clock,
        quotas: Quotas = DEFAULT_QUOTAS,
        idempotency_lifetime: timedelta = DEFAULT_LIFETIME,
        webhooks: WebhookSender | None = None,
        revisions: TaskRevisions | None = None,
        memory_bound: int | None = None,
    ) -> None:
        self._tenant_id, self._uow, self._memory, self._clock = tenant_id, uow, memory, clock
        self._memory_bound = memory_bound  # what a network's own bound may be at most
        self._activity, self._quotas = activity, quotas
        self._idempotency_lifetime = idempotency_lifetime
        self._webhooks, self._revisions = webhooks, revisions

    def create(
        self,
        *,
        name: str,
        description: str,
        config: NetworkConfig,
        agents: list[AgentSpec] | None = None,
        idempotency: IdempotencyKey | None = None,
    ) -> Network:
        """Create a network; without an agent list it gets the default team. A retry under
        the same idempotency key answers the network the first call made."""
        now = self._clock.now()
        network = Network.create(
            tenant_id=self._tenant_id, name=name, description=description, config=config, now=now
        )
        specs = agents if agents is not None else [AgentSpec(t) for t in DEFAULT_TEAM]
        types = self._types_of(specs)
        for spec in specs:
            _add_agent(network, spec, types[spec.type], now)
        network.check_team()
        self._quotas.check(Quota.AGENTS, used=0, adding=len(network.agents))
        if config.webhook is not None and (
            refused := refusal_of(self._webhooks, config.webhook.url)
        ):
            raise InvalidInput("config.webhook.url", refused)
        self._check_memory_bound(config)
        network.webhook_secret = new_secret()
        with self._uow(self._tenant_id) as uow:
            earlier = earlier_create(
                uow, idempotency, Created.NETWORK, now=now, lifetime=self._idempotency_lifetime
            )
            if earlier is not None:
                return uow.networks.get(earlier)
            reserve(uow, self._quotas, Quota.NETWORKS)
            uow.networks.add(network)
            if idempotency is not None:
                uow.idempotency.made(idempotency.key, network.id)
            uow.commit()
        log.info("network.created", network_id=str(network.id), agents=len(network.agents))
        return network

    def _check_memory_bound(self, config: NetworkConfig) -> None:
        """A network may keep fewer items than the deployment's bound, never more."""
        wanted, bound = config.memory.max_items, self._memory_bound
        if wanted is not None and bound is not None and wanted > bound:
            raise InvalidInput(
                "config.memory.max_items",
                f"must be at most {bound}, the bound of every network here (MESH_MEMORY_BOUND)",
            )

    def rotate_webhook_secret(self, network_id: UUID) -> str:
        """A new signing secret for the network's webhooks; the old one signs no more."""
        secret = new_secret()
        with self._uow(self._tenant_id) as uow:
            uow.networks.set_webhook_secret(network_id, secret)
            uow.commit()
        log.info("network.webhook_secret_rotated", network_id=str(network_id))
        return secret

    def list(self, page: Page) -> tuple[list[Network], int]:
        with self._uow(self._tenant_id) as uow:
            found, total = uow.networks.list(page)
        live = iter(self._live([a for n in found for a in n.agents]))
        for network in found:
            network.agents = [next(live) for _ in network.agents]
        return found, total

    def get(self, network_id: UUID) -> Network:
        with self._uow(self._tenant_id) as uow:
            network = uow.networks.get(network_id, with_usage=True)
        network.agents = self._live(network.agents)
        return network

    def delete(self, network_id: UUID) -> None:
        """Delete a network with its agents, tasks and memory, in Postgres and in Redis.

        Redis goes first: if it is down the delete is refused whole (MemoryViewUnavailable)
        rather than leaving its keys behind. A second purge sweeps what a step still running
        wrote in between. The agents' leases go too; a step that began in between drops its
        own when its call ends (a queued message of the network finds no task and does
        nothing).
        """
        with self._uow(self._tenant_id) as uow:
            agent_ids = [a.id for a in uow.networks.get(network_id).agents]
        if self._revisions is not None:
            # Before the purge: a worker's announcement that comes after it makes no key.
            now = self._clock.now().timestamp()
            self._revisions.close_network(self._tenant_id, network_id, now=now)
        self._memory.purge_network(self._tenant_id, network_id)
        try:
            with self._uow(self._tenant_id) as uow:
                uow.networks.delete(network_id)
                uow.commit()
        except MeshError:
            if self._revisions is not None:
                self._revisions.reopen_network(self._tenant_id, network_id)
            raise
        self._activity.forget(self._tenant_id, agent_ids)
        try:
            self._memory.purge_network(self._tenant_id, network_id)
        except MemoryViewUnavailable as exc:
            log.warning("network.purge_incomplete", network_id=str(network_id), error=str(exc))
        log.info("network.deleted", network_id=str(network_id))

    def add_agent(
        self, network_id: UUID, spec: AgentSpec, idempotency: IdempotencyKey | None = None
    ) -> Agent:
        """Add an agent; a retry under the same idempotency key answers the first one."""
        now = self._clock.now()
        with self._uow(self._tenant_id) as uow:
            earlier = earlier_create(
                uow, idempotency, Created.AGENT, now=now, lifetime=self._idempotency_lifetime
            )
            if earlier is not None:
                return uow.agents.get(network_id, earlier)
            network = uow.networks.get(network_id)
            types = _known(current_types(uow, [spec.type]), [spec], "type")
            agent = _add_agent(network, spec, types[spec.type], now)
            reserve(uow, self._quotas, Quota.AGENTS, network_id)
            uow.agents.add(agent)
            if idempotency is not None:
                uow.idempotency.made(idempotency.key, agent.id)
            uow.commit()
        log.info("agent.added", network_id=str(network_id), agent_id=str(agent.id), type=agent.type)
        return agent

    def list_agents(self, network_id: UUID) -> list[Agent]:
        with self._uow(self._tenant_id) as uow:
            uow.networks.require(network_id)
            found = uow.agents.list(network_id)
        return self._live(found)

    def remove_agent(self, network_id: UUID, agent_id: UUID) -> None:
        """Remove an agent, unless it is the network's last coordinator or critic (Conflict)."""
        with self._uow(self._tenant_id) as uow:
            # Locked: two removals of a role's last two agents would each see the other left.
            uow.networks.require_locked(network_id)
            uow.networks.get(network_id).remove_agent(agent_id)
            uow.agents.delete(network_id, agent_id)
            uow.commit()
        self._activity.forget(self._tenant_id, [agent_id])
        log.info("agent.removed", network_id=str(network_id), agent_id=str(agent_id))

    def _types_of(self, specs: list[AgentSpec]) -> dict[str, AgentTypeDef]:
        found = catalog_of(self._uow, self._tenant_id, {s.type for s in specs})
        return _known(found, specs, "agents.{}.type")

    def _live(self, agents: list[Agent]) -> list[Agent]:
        """The agents with the steps each is running now (live state, kept in Redis), and
        the queue their type's steps run on."""
        counts = self._activity.in_flight(
            self._tenant_id, [a.id for a in agents], now=self._clock.now()
        )
        types = catalog_of(self._uow, self._tenant_id, {a.type for a in agents})
        return [
            replace(
                a,
                metrics=replace(a.metrics, in_flight=counts.get(a.id, 0)),
                queue=types[a.type].queue if a.type in types else GENERAL_QUEUE,
            )
            for a in agents
        ]


def _known(
    found: dict[str, AgentTypeDef], specs: list[AgentSpec], field: str
) -> dict[str, AgentTypeDef]:
    """`found`, when it holds every spec's type; else InvalidInput naming the first missing."""
    for i, spec in enumerate(specs):
        if spec.type not in found:
            raise InvalidInput(
                field.format(i),
                f"no agent type {spec.type!r} in the catalog (GET /api/mesh/agent-types)",
            )
    return found


def _add_agent(network: Network, spec: AgentSpec, kind: AgentTypeDef, now: datetime) -> Agent:
    defaults = ModelConfig(kind.model.chain, kind.model.temperature, kind.model.max_tokens)
    return network.new_agent(
        name=spec.name or spec.type,
        type=spec.type,
        now=now,
        model=spec.model or defaults,
        capabilities=spec.capabilities if spec.capabilities is not None else kind.capabilities,
        queue=kind.queue,
    )
