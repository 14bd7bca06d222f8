"""The composition root: builds the services from settings, and knows the concrete adapters."""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
import threading
from dataclasses import dataclass
from functools import cached_property

import redis
import sqlalchemy as sa
import structlog
from celery import Celery

from meshcore.adapters.breaker import BreakerBoard, BreakerPolicy
from meshcore.adapters.celery_dispatch import PRIORITY_STEPS, CeleryDispatcher
from meshcore.adapters.redis_activity import RedisAgentActivity
from meshcore.adapters.redis_epoch import RedisEpoch
from meshcore.adapters.redis_gauges import BreakerGauges, QueueGauges
from meshcore.adapters.redis_memory import RedisMemoryStore
from meshcore.adapters.sql.engine import create_engine
from meshcore.adapters.sql.keys import SqlKeyStore
from meshcore.adapters.sql.uow import SqlUnitOfWorkFactory
from meshcore.domain.clock import SystemClock
from meshcore.domain.network import AgentType, NetworkConfig, queue_for
from meshcore.ports import ModelClient
from meshcore.services.agent_steps import StepRunner
from meshcore.services.coordination import Coordination
from meshcore.services.keys import KeyService
from meshcore.services.memory import MemoryService
from meshcore.services.networks import NetworkService
from meshcore.services.recovery import Sweeper
from meshcore.services.tasks import TaskService
from meshcore.settings import Settings
from meshcore.telemetry import tracing

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Services:
    """The application as one tenant sees it."""

    tenant_id: str
    networks: NetworkService
    tasks: TaskService
    memory: MemoryService
    mesh: Mesh

    @cached_property
    def coordination(self) -> Coordination:
        # Built on first use: only workers coordinate, and only they import litellm.
        return self.mesh.coordination(self.tenant_id)


class Mesh:
    """Everything a process needs, built once per process (after any fork)."""

    def __init__(self, settings: Settings, celery_app: Celery) -> None:
        if settings.redis_url is None:
            raise ValueError("MESH_REDIS_URL is not set; `mesh serve` starts an embedded Redis")
        self.settings = settings
        self.engine = create_engine(
            settings.resolved_database_url(),
            pool_size=settings.database_pool_size,
            max_overflow=settings.database_max_overflow,
        )
        tracing.instrument_engine(self.engine)
        self.redis = redis.Redis.from_url(settings.redis_url, health_check_interval=30)
        self.uow = SqlUnitOfWorkFactory(self.engine)
        self.memory_store = RedisMemoryStore(self.redis)
        self.activity = RedisAgentActivity(self.redis)
        self.dispatcher = CeleryDispatcher(celery_app)
        self.clock = SystemClock()
        self._tenants: dict[str, Services] = {}
        self._lock = threading.Lock()

    def tenant(self, tenant_id: str) -> Services:
        with self._lock:
            if tenant_id not in self._tenants:
                self._tenants[tenant_id] = Services(
                    tenant_id=tenant_id,
                    networks=NetworkService(
                        tenant_id=tenant_id,
                        uow=self.uow,
                        memory=self.memory_store,
                        activity=self.activity,
                        clock=self.clock,
                    ),
                    tasks=TaskService(
                        tenant_id=tenant_id,
                        uow=self.uow,
                        dispatcher=self.dispatcher,
                        clock=self.clock,
                    ),
                    memory=MemoryService(
                        tenant_id=tenant_id, uow=self.uow, store=self.memory_store, clock=self.clock
                    ),
                    mesh=self,
                )
            return self._tenants[tenant_id]

    def coordination(self, tenant_id: str) -> Coordination:
        steps = StepRunner(
            tenant_id=tenant_id,
            uow=self.uow,
            memory=self.memory_store,
            activity=self.activity,
            models=self.models,
            clock=self.clock,
            memory_limit=self.settings.memory_read_limit,
            memory_min_confidence=self.settings.memory_min_confidence,
            lease_seconds=self.settings.stall_seconds,
            max_attempts=self.settings.max_step_attempts,
        )
        return Coordination(
            tenant_id=tenant_id,
            uow=self.uow,
            steps=steps,
            dispatcher=self.dispatcher,
            clock=self.clock,
        )

    def sweeper(self) -> Sweeper:
        return Sweeper(
            finder=self.uow,
            coordination=lambda tenant_id: self.tenant(tenant_id).coordination,
            clock=self.clock,
            stall_seconds=self.settings.stall_seconds,
            epoch=self.epoch,
        )

    @cached_property
    def epoch(self) -> RedisEpoch:
        # One per process: it remembers the epoch this process last saw.
        return RedisEpoch(self.redis)

    @cached_property
    def models(self) -> ModelClient:
        # Imported here: litellm takes seconds to import and only workers call models.
        from meshcore.adapters.litellm_models import ModelGateway, is_breaker_failure

        board = BreakerBoard(self.redis, self.breaker_policy(), is_breaker_failure)
        return ModelGateway(self.settings, board)

    def breaker_policy(self) -> BreakerPolicy:
        s = self.settings
        return BreakerPolicy(
            failure_threshold=s.breaker_failure_threshold,
            window_seconds=s.breaker_window_seconds,
            recovery_seconds=s.breaker_recovery_seconds,
            probe_lease_seconds=s.model_timeout_seconds + 30,
        )

    @cached_property
    def keys(self) -> KeyService:
        if self.settings.dev_api_key is not None:
            log.warning("keys.dev_key_enabled", note="MESH_DEV_API_KEY is for development only")
        return build_keys(self.settings, self.engine)

    @cached_property
    def breakers(self) -> BreakerBoard:
        """The fleet's breakers as the API reads them (the gateway counts into the same keys)."""
        return BreakerBoard(self.redis, self.breaker_policy())

    def default_network_config(self) -> NetworkConfig:
        s = self.settings
        return NetworkConfig(
            max_iterations=s.max_iterations,
            timeout_seconds=s.timeout_seconds,
            quality_threshold=s.quality_threshold,
        )

    def fleet_gauges(self) -> list[object]:
        """Collectors of the fleet's state in Redis, for the API's /metrics."""
        queues = [queue_for(t) for t in AgentType]
        return [
            QueueGauges(self.redis, queues, PRIORITY_STEPS),
            BreakerGauges(self.breakers, self.settings.model_chain),
        ]

    def readiness(self) -> dict[str, bool]:
        return {"database": self.uow.is_reachable(), "redis": self.memory_store.is_reachable()}

    def close(self) -> None:
        self.engine.dispose()
        self.redis.close()


def build(settings: Settings, celery_app: Celery) -> Mesh:
    return Mesh(settings, celery_app)


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


def api_key_secret(settings: Settings) -> bytes:
    """MESH_API_KEY_SECRET; on the embedded default, one generated into the data dir once."""
    if settings.api_key_secret is not None:
        return settings.api_key_secret.get_secret_value().encode()
    if not settings.is_embedded:
        raise ValueError(
            "MESH_API_KEY_SECRET is not set: every API process needs the same secret to check "
            "API keys (make one with `openssl rand -hex 32`)"
        )
    path = settings.data_dir / "api-key-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written whole, then linked into place: of two processes starting at once, one wins
        # and neither can read a half-written file.
        fd, draft = tempfile.mkstemp(dir=path.parent, prefix=".api-key-secret.")
        try:
            with os.fdopen(fd, "w") as file:  # mkstemp makes it 0600
                file.write(secrets.token_hex(32))
            with contextlib.suppress(FileExistsError):
                os.link(draft, path)
        finally:
            os.unlink(draft)
    return path.read_text().strip().encode()


def start_epoch(settings: Settings) -> None:
    """Begin the fleet's Redis epoch unless one is running (a worker starting up)."""
    if settings.redis_url is None:
        raise ValueError("MESH_REDIS_URL is not set; `mesh serve` starts an embedded Redis")
    client = redis.Redis.from_url(settings.redis_url)
    try:
        RedisEpoch(client).start(SystemClock().now())
    finally:
        client.close()
