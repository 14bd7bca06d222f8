"""The composition root: wires the services to their adapters under the settings.

`build` makes a real process's Mesh: `connect` opens its servers and `adapters` makes the
concrete adapters over them. The unit tests make a Mesh of fakes through the same `Mesh`, so
what a service is given is written once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from functools import cached_property

import redis
import sqlalchemy as sa
import structlog
from celery import Celery

from meshcore.adapters import redis_backlog, redis_tls
from meshcore.adapters.breaker import BreakerBoard, BreakerPolicy
from meshcore.adapters.celery_dispatch import PRIORITY_STEPS, CeleryDispatcher
from meshcore.adapters.redis_activity import RedisAgentActivity
from meshcore.adapters.redis_backlog import RedisBacklog
from meshcore.adapters.redis_epoch import RedisEpoch
from meshcore.adapters.redis_gauges import BreakerGauges, QueueGauges
from meshcore.adapters.redis_memory import RedisMemoryStore
from meshcore.adapters.redis_revisions import RedisTaskRevisions
from meshcore.adapters.redis_tenant import RedisTenantState
from meshcore.adapters.sql.audit import SqlAuditTrail
from meshcore.adapters.sql.engine import create_engine
from meshcore.adapters.sql.erasure import SqlTenantRecord
from meshcore.adapters.sql.keys import SqlKeyStore
from meshcore.adapters.sql.memory_expiry import SqlMemoryExpiry
from meshcore.adapters.sql.uow import SqlUnitOfWorkFactory
from meshcore.adapters.webhook_http import HttpWebhookSender
from meshcore.agents import BUILTINS
from meshcore.domain.agent_types import GENERAL_QUEUE
from meshcore.domain.clock import SystemClock
from meshcore.domain.network import NetworkConfig
from meshcore.domain.quotas import Quotas
from meshcore.domain.webhooks import RetryPolicy
from meshcore.ports import (
    AgentActivity,
    Backlog,
    BrokerEpoch,
    Clock,
    Dispatcher,
    MemoryExpiry,
    MemoryStore,
    ModelClient,
    Record,
    TaskRevisions,
    ToolClient,
    WebhookSender,
)
from meshcore.process_secrets import api_key_secret, build_sealer
from meshcore.services.admission import Admission
from meshcore.services.agent_steps import StepRunner
from meshcore.services.agent_types import AgentTypeService
from meshcore.services.coordination import Coordination
from meshcore.services.erasure import ErasureService
from meshcore.services.keys import KeyService
from meshcore.services.learning import MemoryLearning
from meshcore.services.lifetimes import MemoryPromotion, MemorySweep
from meshcore.services.memory import MemoryService
from meshcore.services.networks import NetworkService
from meshcore.services.ratings import RatingService
from meshcore.services.recovery import Sweeper
from meshcore.services.tasks import TaskService
from meshcore.services.webhooks import WebhookService
from meshcore.settings import Settings
from meshcore.telemetry import tracing

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Adapters:
    """The parts the services run on: `connect` makes the real ones, the unit tests pass fakes
    (tests/fakes.py), and both are wired into services by the same `Mesh`."""

    record: Record
    memory: MemoryStore
    activity: AgentActivity
    revisions: TaskRevisions
    dispatcher: Dispatcher
    clock: Clock
    backlog: Backlog
    epoch: BrokerEpoch
    webhook_sender: WebhookSender
    # Made on first use: only workers call models and tools, and only they import litellm.
    models: Callable[[], ModelClient]
    tools: Callable[[], ToolClient]
    # What the admission control's cached backlog depth ages by.
    timer: Callable[[], float] = time.monotonic
    # The sweep's deletes of memory whose lifetime is over, across tenants (None: none).
    memory_expiry: MemoryExpiry | None = None


@dataclass(frozen=True)
class Connections:
    """The servers a process holds connections to, for what reaches past the ports: API keys,
    the audit trail, tenant erasure, the fleet's breakers and queue gauges."""

    engine: sa.Engine
    redis: redis.Redis
    # A client of its own, whose short timeouts keep a hung Redis from holding a submit.
    backlog_redis: redis.Redis

    def close(self) -> None:
        self.engine.dispose()
        self.redis.close()
        self.backlog_redis.close()


@dataclass(frozen=True)
class Services:
    """The application as one tenant sees it."""

    tenant_id: str
    networks: NetworkService
    tasks: TaskService
    memory: MemoryService
    learning: MemoryLearning
    ratings: RatingService
    agent_types: AgentTypeService
    mesh: Mesh

    @cached_property
    def steps(self) -> StepRunner:
        return self.mesh.step_runner(self.tenant_id)

    @cached_property
    def promotion(self) -> MemoryPromotion:
        a = self.mesh.adapters
        return MemoryPromotion(
            tenant_id=self.tenant_id, uow=a.record, store=a.memory, clock=a.clock
        )

    @cached_property
    def coordination(self) -> Coordination:
        # Built on first use: only workers coordinate, and only they import litellm.
        return self.mesh.coordination(self.tenant_id, self.steps)


class Mesh:
    """Everything a process needs, built once per process (after any fork): the services of
    each tenant, wired to `adapters` under `settings`."""

    def __init__(
        self, settings: Settings, adapters: Adapters, connections: Connections | None = None
    ) -> None:
        self.settings, self.adapters, self._connections = settings, adapters, connections
        self.quotas = Quotas(
            networks_per_tenant=settings.max_networks_per_tenant,
            agents_per_network=settings.max_agents_per_network,
            memory_items_per_network=settings.max_memory_items_per_network,
            tasks_in_flight=settings.max_tasks_in_flight,
        )
        self.idempotency_lifetime = timedelta(seconds=settings.idempotency_lifetime_seconds)
        self._tenants: dict[str, Services] = {}
        self._lock = threading.Lock()

    def substitute(self, **changes: object) -> None:
        """Swap some adapters for a test's own, before any service was built with them."""
        built = {"admission", "webhooks", "models", "tools"} & self.__dict__.keys()
        if self._tenants or built:
            raise RuntimeError("services were built with the adapters; substitute before that")
        self.adapters = replace(self.adapters, **changes)  # type: ignore[arg-type]

    @property
    def uow(self) -> Record:
        return self.adapters.record

    @property
    def clock(self) -> Clock:
        return self.adapters.clock

    @property
    def dispatcher(self) -> Dispatcher:
        return self.adapters.dispatcher

    @cached_property
    def admission(self) -> Admission:
        # One per process, shared by every tenant: the bound and its cached depth are the fleet's.
        a = self.adapters
        return Admission(a.backlog, max_backlog=self.settings.max_backlog, timer=a.timer)

    @cached_property
    def webhooks(self) -> WebhookService:
        a, s = self.adapters, self.settings
        return WebhookService(
            uow=a.record,
            sender=a.webhook_sender,
            dispatcher=a.dispatcher,
            clock=a.clock,
            policy=RetryPolicy(
                max_attempts=s.webhook_max_attempts,
                base_seconds=s.webhook_retry_base_seconds,
                max_seconds=s.webhook_retry_max_seconds,
            ),
            timeout_seconds=s.webhook_timeout_seconds,
        )

    def tenant(self, tenant_id: str) -> Services:
        a = self.adapters
        with self._lock:
            if tenant_id not in self._tenants:
                self._tenants[tenant_id] = Services(
                    tenant_id=tenant_id,
                    networks=NetworkService(
                        tenant_id=tenant_id,
                        uow=a.record,
                        memory=a.memory,
                        activity=a.activity,
                        clock=a.clock,
                        quotas=self.quotas,
                        idempotency_lifetime=self.idempotency_lifetime,
                        webhooks=a.webhook_sender,
                        revisions=a.revisions,
                        memory_bound=self.settings.memory_bound,
                    ),
                    tasks=TaskService(
                        tenant_id=tenant_id,
                        uow=a.record,
                        dispatcher=a.dispatcher,
                        clock=a.clock,
                        revisions=a.revisions,
                        quotas=self.quotas,
                        idempotency_lifetime=self.idempotency_lifetime,
                        webhooks=a.webhook_sender,
                        admission=self.admission,
                    ),
                    memory=MemoryService(
                        tenant_id=tenant_id,
                        uow=a.record,
                        store=a.memory,
                        clock=a.clock,
                        quotas=self.quotas,
                        idempotency_lifetime=self.idempotency_lifetime,
                        memory_bound=self.settings.memory_bound,
                    ),
                    learning=MemoryLearning(
                        tenant_id=tenant_id, uow=a.record, store=a.memory, clock=a.clock
                    ),
                    ratings=RatingService(
                        tenant_id=tenant_id,
                        uow=a.record,
                        store=a.memory,
                        clock=a.clock,
                        memory_bound=self.settings.memory_bound,
                    ),
                    agent_types=AgentTypeService(
                        tenant_id=tenant_id,
                        uow=a.record,
                        clock=a.clock,
                        urls=a.webhook_sender,
                        stdio_commands=self.settings.mcp_stdio_commands,
                    ),
                    mesh=self,
                )
            return self._tenants[tenant_id]

    def step_runner(self, tenant_id: str) -> StepRunner:
        a, s = self.adapters, self.settings
        return StepRunner(
            tenant_id=tenant_id,
            uow=a.record,
            memory=a.memory,
            activity=a.activity,
            models=self.models,
            clock=a.clock,
            memory_limit=s.memory_read_limit,
            memory_min_confidence=s.memory_min_confidence,
            memory_tokens=s.memory_token_budget,
            lease_seconds=s.stall_seconds,
            max_attempts=s.max_step_attempts,
            revisions=a.revisions,
            tools=self.tools,
            max_tool_calls=s.max_tool_calls,
            memory_bound=s.memory_bound,
        )

    def coordination(self, tenant_id: str, steps: StepRunner | None = None) -> Coordination:
        return Coordination(
            tenant_id=tenant_id,
            uow=self.adapters.record,
            steps=steps or self.step_runner(tenant_id),
            dispatcher=self.adapters.dispatcher,
            clock=self.adapters.clock,
            learning=self.tenant(tenant_id).learning,
        )

    def sweeper(self) -> Sweeper:
        return Sweeper(
            finder=self.adapters.record,
            coordination=lambda tenant_id: self.tenant(tenant_id).coordination,
            clock=self.adapters.clock,
            stall_seconds=self.settings.stall_seconds,
            epoch=self.adapters.epoch,
            send_delivery=self.webhooks.send_later,
            idempotency_lifetime=self.idempotency_lifetime,
            memory=self.memory_sweep(),
        )

    def memory_sweep(self) -> MemorySweep | None:
        expiry = self.adapters.memory_expiry
        return None if expiry is None else MemorySweep(expiry=expiry, store=self.adapters.memory)

    @cached_property
    def models(self) -> ModelClient:
        return self.adapters.models()

    @cached_property
    def tools(self) -> ToolClient:
        return self.adapters.tools()

    @property
    def connections(self) -> Connections:
        if self._connections is None:
            raise RuntimeError("this Mesh runs on adapters alone: it holds no connections")
        return self._connections

    @cached_property
    def keys(self) -> KeyService:
        if self.settings.dev_api_key is not None:
            log.warning("keys.dev_key_enabled", note="MESH_DEV_API_KEY is for development only")
        return build_keys(self.settings, self.connections.engine)

    @cached_property
    def audit(self) -> SqlAuditTrail:
        return SqlAuditTrail(self.connections.engine)

    @cached_property
    def erasure(self) -> ErasureService:
        return build_erasure(self.connections.engine, self.connections.redis, self.keys)

    @cached_property
    def breakers(self) -> BreakerBoard:
        """The fleet's breakers as the API reads them (the gateway counts into the same keys)."""
        return BreakerBoard(self.connections.redis, breaker_policy(self.settings))

    def default_network_config(self) -> NetworkConfig:
        s = self.settings
        return NetworkConfig(
            max_iterations=s.max_iterations,
            timeout_seconds=s.timeout_seconds,
            quality_threshold=s.quality_threshold,
        )

    def fleet_gauges(self) -> list[object]:
        """Collectors of the fleet's state in Redis, for the API's /metrics."""
        return [
            QueueGauges(self.connections.redis, task_queues(), PRIORITY_STEPS),
            BreakerGauges(self.breakers, self.settings.model_chain),
        ]

    def readiness(self) -> dict[str, bool]:
        return {
            "database": self.adapters.record.is_reachable(),
            "redis": self.adapters.memory.is_reachable(),
        }

    def close(self) -> None:
        close = getattr(self.adapters.revisions, "close", None)
        if close is not None:
            close()
        if self._connections is not None:
            self._connections.close()


def build(settings: Settings, celery_app: Celery) -> Mesh:
    """The Mesh of a real process: its adapters on the servers the settings name."""
    connections = connect(settings)
    mesh = Mesh(settings, adapters(settings, connections, celery_app), connections)
    # A commit that made webhook deliveries sends them, as it announces its changes.
    mesh.uow.send_deliveries = lambda made: mesh.webhooks.send_made(made)  # type: ignore[attr-defined]
    return mesh


def connect(settings: Settings) -> Connections:
    if settings.redis_url is None:
        raise ValueError("MESH_REDIS_URL is not set; `mesh serve` starts an embedded Redis")
    engine = create_engine(
        settings.resolved_database_url(),
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
    )
    tracing.instrument_engine(engine)
    return Connections(
        engine=engine,
        redis=redis_tls.connect(settings, health_check_interval=30),
        backlog_redis=redis_backlog.connect(settings),
    )


def adapters(settings: Settings, connections: Connections, celery_app: Celery) -> Adapters:
    """The real adapters over `connections`, sealing content under the settings' data keys."""
    sealer = build_sealer(settings)
    client = connections.redis
    revisions = RedisTaskRevisions(client)

    def models() -> ModelClient:
        # Imported here: litellm takes seconds to import and only workers call models.
        from meshcore.adapters import litellm_models

        litellm_models.configure(settings)
        board = BreakerBoard(client, breaker_policy(settings), litellm_models.is_breaker_failure)
        return litellm_models.ModelGateway(settings, board)

    def tools() -> ToolClient:
        # One per process, shared by every tenant and thread: its cached listings and TLS
        # context are the process's. Imported here: only workers call tools.
        from meshcore.adapters.mcp_tools import McpTools

        return McpTools(
            timeout=settings.tool_timeout_seconds, stdio_commands=settings.mcp_stdio_commands
        )

    return Adapters(
        # Every commit that changed a task tells its waiters, through Redis.
        record=SqlUnitOfWorkFactory(connections.engine, sealer, announce=revisions.publish),
        memory=RedisMemoryStore(client, sealer),
        activity=RedisAgentActivity(client),
        revisions=revisions,
        dispatcher=CeleryDispatcher(celery_app),
        clock=SystemClock(),
        backlog=RedisBacklog(connections.backlog_redis, task_queues(), PRIORITY_STEPS),
        # One per process: it remembers the epoch this process last saw.
        epoch=RedisEpoch(client),
        webhook_sender=HttpWebhookSender(
            allow_private=settings.webhook_allow_private,
            timeout_seconds=settings.webhook_timeout_seconds,
        ),
        models=models,
        tools=tools,
        memory_expiry=SqlMemoryExpiry(connections.engine),
    )


def breaker_policy(settings: Settings) -> BreakerPolicy:
    return BreakerPolicy(
        failure_threshold=settings.breaker_failure_threshold,
        window_seconds=settings.breaker_window_seconds,
        recovery_seconds=settings.breaker_recovery_seconds,
        probe_lease_seconds=settings.model_timeout_seconds + 30,
    )


def task_queues() -> list[str]:
    """The queues that carry tasks' work: each built-in type's (the coordinator's among
    them) and the general one of types with no pool of their own; webhook deliveries are not
    a task's work, and wait on a queue of their own."""
    return [*(t.queue for t in BUILTINS.values()), GENERAL_QUEUE]


def build_erasure(engine: sa.Engine, client: redis.Redis, keys: KeyService) -> ErasureService:
    """Tenant erasure over the record `engine` reaches and the Redis `client` talks to: for
    the API and for `mesh tenant erase` alike."""
    return ErasureService(record=SqlTenantRecord(engine), state=RedisTenantState(client), keys=keys)


def build_keys(settings: Settings, engine: sa.Engine) -> KeyService:
    """The API keys in the record `engine` reaches, hashed under the settings' secret
    (ValueError on real servers without one): for the API and for `mesh keys` alike."""
    dev_key = settings.dev_api_key
    return KeyService(
        store=SqlKeyStore(engine),
        clock=SystemClock(),
        secret=api_key_secret(settings),
        dev_key=dev_key.get_secret_value() if dev_key is not None else None,
    )


def start_epoch(settings: Settings) -> None:
    """Begin the fleet's Redis epoch unless one is running (a worker starting up)."""
    if settings.redis_url is None:
        raise ValueError("MESH_REDIS_URL is not set; `mesh serve` starts an embedded Redis")
    client = redis_tls.connect(settings)
    try:
        RedisEpoch(client).start(SystemClock().now())
    finally:
        client.close()
