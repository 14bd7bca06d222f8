"""The ports: what the application needs from the world, as Protocols adapters implement."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol, Self
from uuid import UUID

from meshcore.domain.agent_types import AgentTypeDef, McpEndpoint
from meshcore.domain.audit import AuditEvent
from meshcore.domain.confidence import ConfidenceChange, ConfidenceSource, Move
from meshcore.domain.errors import MeshError
from meshcore.domain.idempotency import Created, IdempotencyKey, PriorCreate
from meshcore.domain.keys import ApiKey
from meshcore.domain.lifetimes import Holding, MemoryPolicy
from meshcore.domain.memory import MemoryItem, MemoryQuery
from meshcore.domain.network import Agent, Network
from meshcore.domain.plan import Plan, PlannedSubtask
from meshcore.domain.quotas import Quota
from meshcore.domain.rating import Rating
from meshcore.domain.relevance import Candidate
from meshcore.domain.task import (
    HistoryEntry,
    Priority,
    Revision,
    StepRecord,
    Subtask,
    Task,
    TaskChange,
    TaskStatus,
    TaskSummary,
    Usage,
)
from meshcore.domain.webhooks import Attempt, DeliveryStatus
from meshcore.domain.webhooks import Delivery as WebhookDelivery


@dataclass(frozen=True)
class Page:
    """A slice of a list: `offset` items skipped, at most `limit` returned."""

    offset: int = 0
    limit: int = 20


class NetworkRepository(Protocol):
    def add(self, network: Network) -> None: ...
    def get(self, network_id: UUID, *, with_usage: bool = False) -> Network: ...
    def require(self, network_id: UUID) -> None:
        """Raise NotFound unless the network exists (cheaper than loading it)."""
        ...

    def require_locked(self, network_id: UUID) -> None:
        """As `require`, and hold the network's row until the unit of work ends, so that
        changes to its team take turns."""
        ...

    def list(self, page: Page) -> tuple[list[Network], int]: ...
    def delete(self, network_id: UUID) -> None: ...
    def set_webhook_secret(self, network_id: UUID, secret: str) -> None:
        """Replace the network's webhook signing secret; NotFound for no such network."""
        ...

    def webhook_secret(self, network_id: UUID) -> str | None: ...


class AgentRepository(Protocol):
    def add(self, agent: Agent) -> None: ...
    def get(self, network_id: UUID, agent_id: UUID) -> Agent: ...
    def list(self, network_id: UUID) -> list[Agent]: ...
    def delete(self, network_id: UUID, agent_id: UUID) -> None: ...
    def record_call(
        self,
        network_id: UUID,
        agent_type: str,
        *,
        latency_ms: float,
        usage: Usage,
        is_failure: bool,
    ) -> None:
        """Count a call against the agent that takes the type's steps (`Network.agent_of`)."""
        ...


class TaskRepository(Protocol):
    """Each way of reading one task is a method of its own; the locked ones always lock.

    A locked read holds the task's row until the unit of work ends, so that its writers
    (workers, POST .../process) take turns. Each raises NotFound for an id the tenant lacks.
    """

    def add(self, task: Task) -> None: ...
    def get(self, task_id: UUID) -> Task: ...
    def get_locked(self, task_id: UUID) -> Task: ...
    def in_network(self, task_id: UUID, *, network_id: UUID) -> Task:
        """The task if it belongs to `network_id`, unlocked: what a client reads."""
        ...

    def locked_in_network(self, task_id: UUID, *, network_id: UUID) -> Task: ...
    def list(
        self, network_id: UUID, page: Page, status: TaskStatus | None = None
    ) -> tuple[list[Task], int]: ...
    def save(self, task: Task) -> None:
        """Store the task's state and its new history, each event numbered after the last."""
        ...

    def add_webhook_attempt(self, task_id: UUID, entry: HistoryEntry) -> None:
        """Append a webhook attempt's event, even after the task's final event."""
        ...

    def touch(self, task_id: UUID, now: datetime) -> None:
        """Set the task's heartbeat: a step began (now), or its enqueue failed (long ago)."""
    def history(self, task_id: UUID) -> list[HistoryEntry]: ...
    def events(self, task_id: UUID, *, after: int, limit: int) -> list[HistoryEntry]:
        """The task's events numbered above `after`, in order, at most `limit`."""
        ...

    def revision(self, task_id: UUID, *, network_id: UUID) -> Revision:
        """The task's revision and status, and nothing else (NotFound as `in_network`)."""
        ...

    def summary(self, task_id: UUID, *, network_id: UUID) -> TaskSummary: ...
    def begin_step(self, entry: HistoryEntry, task_id: UUID, *, now: datetime) -> None:
        """Note a step's model call in the log and move the heartbeat; TaskEnded if the task
        has ended (its status is the entry's, taken under the task's row lock)."""
        ...

    def add_plan(self, task_id: UUID, iteration: int, plan: Plan, *, now: datetime) -> None:
        """Store an iteration's subtasks once (the first plan wins), noting it in the log;
        TaskEnded if the task has ended."""
        ...

    def replace_plan(self, task_id: UUID, iteration: int, plan: Plan, *, now: datetime) -> None:
        """Put `plan` in place of the iteration's subtasks (a person edited the plan before
        any of it ran), noting it in the log; TaskEnded if the task has ended."""
        ...

    def subtasks(self, task_id: UUID, iteration: int) -> list[Subtask]: ...
    def subtask(self, task_id: UUID, iteration: int, key: str) -> Subtask | None: ...
    def every_subtask(self, task_id: UUID) -> list[Subtask]:
        """Every iteration's subtasks, in one read: by iteration, then wave, then position."""
        ...

    def add_step(self, step: StepRecord, *, now: datetime) -> None:
        """Add a recorded step's usage to its task's and note it in the task's history;
        TaskEnded if the task has ended, whose result then takes no more work."""
        ...


class StepRepository(Protocol):
    def begin_attempt(
        self, task_id: UUID, iteration: int, key: str, *, now: datetime, lease_seconds: float
    ) -> int | None:
        """Count an attempt and lease the step for `lease_seconds`; None while it is leased."""
        ...

    def renew_lease(self, task_id: UUID, iteration: int, key: str, *, now: datetime) -> None:
        """Restart the step's lease from `now`: an attempt still at work (a tool loop's calls
        can outlast a lease) keeps it, and no other attempt begins the step meanwhile."""
        ...

    def record(self, step: StepRecord) -> tuple[StepRecord, bool]:
        """Insert unless a step with the same key exists; return the stored one and if it is new."""
        ...

    def get(self, task_id: UUID, iteration: int, key: str) -> StepRecord | None: ...
    def for_iteration(self, task_id: UUID, iteration: int) -> list[StepRecord]: ...


class MemoryRepository(Protocol):
    def add(self, item: MemoryItem) -> None:
        """Insert the item as it is; one that restates an item of the network fails (the
        record's unique fingerprint): writers that may restate use `restated` and `admit`."""
        ...

    def restated(self, item: MemoryItem) -> UUID | None:
        """The item of the network that `item` restates (restatement.restates), if any."""
        ...

    def admit(self, item: MemoryItem) -> UUID | None:
        """Insert the item unless it restates one of the network's: then insert nothing and
        answer that one's id. Two writers of one text at once insert it once: the second
        waits for the first to commit, then finds its item."""
        ...

    def same_subject(self, item: MemoryItem) -> list[MemoryItem]:
        """The network's other items of the item's type on its subject (contradiction.stance),
        newest first and bounded: the candidates for a contradiction. Holds the subject until
        the unit of work ends, so two decisions on it written at once take turns."""
        ...

    def link_contradictions(
        self, item_id: UUID, other_ids: Sequence[UUID], *, at: datetime
    ) -> None:
        """Record that the item contradicts each of the others (and they it)."""
        ...

    def contradictions(self, item_ids: Sequence[UUID]) -> dict[UUID, tuple[UUID, ...]]:
        """The items each of `item_ids` contradicts, oldest link first; absent if none."""
        ...

    def note_restatement(self, output: MemoryItem, holder_id: UUID) -> None:
        """Record that a step's output item (naming its task, subtask and iteration), which
        was not inserted, is held by the item it restated."""
        ...

    def restatements(
        self, network_id: UUID, task_id: UUID, keys: Sequence[str]
    ) -> list[MemoryItem]:
        """The items holding the outputs of the task's given subtasks that restated them,
        each as that step's output (restatement.as_output), oldest first."""
        ...

    def get(self, network_id: UUID, item_id: UUID) -> MemoryItem: ...
    def list(self, network_id: UUID, query: MemoryQuery) -> list[MemoryItem]: ...
    def count(self, network_id: UUID, query: MemoryQuery) -> int: ...
    def change_confidence(
        self,
        network_id: UUID,
        item_id: UUID,
        move: Move,
        *,
        source: ConfidenceSource,
        reason: str,
        task_id: UUID | None,
        at: datetime,
    ) -> ConfidenceChange | None:
        """Move the item's confidence (`Reinforce` by a verdict, or `Assess` by its source)
        and record the change, holding the item's row until the unit of work ends so that
        concurrent verdicts take turns, each from where the last left it. None, recording
        nothing, for an item the network lacks or a move that moves nothing."""
        ...

    def confidence_history(self, network_id: UUID, item_id: UUID) -> list[ConfidenceChange]:
        """The item's changes, oldest first; none for an item the network lacks."""
        ...


class MemoryLifetimeRepository(Protocol):
    """What memory's lifetimes and bound need of the record (domain/lifetimes.py)."""

    def policy(self, network_id: UUID) -> MemoryPolicy | None:
        """The network's memory policy, None for a network the tenant lacks."""
        ...

    def count(self, network_id: UUID, *, adding: int = 0) -> int:
        """Add `adding` to the network's count of items and answer it, holding the count
        until the unit of work ends, so that writers of the network take turns at it. A
        network without a count is counted once, as the count is first needed."""
        ...

    def set_count(self, network_id: UUID, items: int) -> None: ...
    def holdings(self, network_id: UUID) -> list[Holding]:
        """Every item of the network as eviction weighs it (its uses: its confidence changes)."""
        ...

    def evict(self, network_id: UUID, item_ids: Sequence[UUID]) -> list[UUID]:
        """Delete those of the items no other unit of work holds (it never waits for one),
        answering the ones deleted; the count is the caller's to set."""
        ...

    def promote(self, network_id: UUID, item_id: UUID, *, at: datetime) -> MemoryItem:
        """Make the item last (lifetimes.promoted); NotFound for an item the network lacks."""
        ...

    def renew(self, network_id: UUID, item_id: UUID, *, until: datetime) -> None:
        """Put the item's expiry off to `until` if it would expire sooner (lifetimes.renewed);
        an item that lasts, or one the network lacks, is left alone."""
        ...


@dataclass(frozen=True)
class Forgotten:
    """An item the sweep deleted from the record, to take out of the view too."""

    tenant_id: str
    network_id: UUID
    item_id: UUID


class MemoryExpiry(Protocol):
    """The sweep's deletes of memory whose lifetime is over, across tenants, a batch at a time;
    each also takes what it deleted off its network's count."""

    def forget_expired(self, now: datetime, limit: int) -> list[Forgotten]:
        """Delete at most `limit` items whose expiry is at or before `now`, oldest first."""
        ...

    def forget_of_ended_tasks(self, limit: int) -> list[Forgotten]:
        """Delete at most `limit` context items of tasks that have ended, unless promoted."""
        ...


class WebhookRepository(Protocol):
    def lease(
        self, delivery_id: UUID, *, now: datetime, until: datetime
    ) -> WebhookDelivery | None:
        """The pending delivery if it is due and not leased, leased until `until`."""
        ...

    def record(
        self,
        delivery_id: UUID,
        *,
        attempts: int,
        status: DeliveryStatus,
        next_attempt_at: datetime,
    ) -> None:
        """Record how far the delivery got, and release its lease."""
        ...

    def for_task(self, task_id: UUID) -> list[WebhookDelivery]: ...


class QuotaRepository(Protocol):
    """What the tenant holds, counted against its quotas; `scope` is the network of a
    per-network quota."""

    def hold(self, quota: Quota, scope: UUID | None = None) -> None:
        """Take the quota's lock until the unit of work ends: of two creates racing for the
        last slot, the second counts only once the first has committed or rolled back."""
        ...

    def used(self, quota: Quota, scope: UUID | None = None, *, up_to: int) -> int:
        """How much of the quota is taken, counted no further than `up_to`."""
        ...


class IdempotencyRepository(Protocol):
    def claim(
        self, claim: IdempotencyKey, created: Created, *, now: datetime, expired_before: datetime
    ) -> PriorCreate | None:
        """Hold the key for the create of this unit of work (None), or answer what an earlier
        create under it made: one still in flight is waited for. A key claimed before
        `expired_before` is held anew."""
        ...

    def made(self, key: str, resource_id: UUID) -> None:
        """Record what the create holding `key` made."""
        ...


class AgentTypeRepository(Protocol):
    """The tenant's own agent types, a row per version (the built-in ones are not stored)."""

    def current(self, names: Sequence[str] | None = None) -> dict[str, AgentTypeDef]:
        """The latest version of each type named (None: every type), deleted ones left out."""
        ...

    def version(self, name: str, version: int) -> AgentTypeDef | None: ...
    def latest_version(self, name: str) -> int:
        """The type's latest version number, a deletion's included (0: never made)."""
        ...

    def add(self, definition: AgentTypeDef, *, is_deleted: bool = False) -> None:
        """Store a new version; Conflict if that version was stored meanwhile."""
        ...

    def networks_using(self, name: str) -> list[UUID]: ...


class RatingRepository(Protocol):
    """Clients' ratings of their tasks, one a task."""

    def get(self, task_id: UUID) -> Rating | None: ...
    def put(self, rating: Rating) -> None:
        """Store the task's rating, in place of the one it had."""
        ...


class ToolCallStatus(enum.StrEnum):
    STARTED = "started"  # about to be sent: a row left so was in flight when its worker died
    DONE = "done"  # the server answered (its result may be an error the tool reported)
    FAILED = "failed"  # the call did not reach the tool, or came back with no answer


@dataclass(frozen=True)
class ToolCallRecord:
    """One tool call of a step, keyed by (task, iteration, key, number)."""

    task_id: UUID
    iteration: int
    key: str
    number: int  # from 1, in the order the step's model asked for them
    server: str  # the type's name for the server
    tool: str
    arguments_hash: str
    arguments: dict[str, object]
    status: ToolCallStatus
    started_at: datetime
    result: str | None = None
    is_error: bool = False
    latency_ms: float = 0.0
    finished_at: datetime | None = None


class ToolCallRepository(Protocol):
    def start(self, call: ToolCallRecord) -> tuple[ToolCallRecord, bool]:
        """Insert a `started` call unless one has its key; the stored one, and if it is new."""
        ...

    def finish(
        self,
        call: ToolCallRecord,
        *,
        status: ToolCallStatus,
        result: str,
        is_error: bool,
        latency_ms: float,
        now: datetime,
    ) -> None:
        """Record how the call (by its key) ended."""
        ...

    def for_step(self, task_id: UUID, iteration: int, key: str) -> list[ToolCallRecord]: ...


class UnitOfWork(Protocol):
    """One transaction over the record; leaving the block without `commit()` rolls back."""

    networks: NetworkRepository
    agents: AgentRepository
    tasks: TaskRepository
    steps: StepRepository
    memory: MemoryRepository
    lifetimes: MemoryLifetimeRepository
    quotas: QuotaRepository
    idempotency: IdempotencyRepository
    webhooks: WebhookRepository
    agent_types: AgentTypeRepository
    tool_calls: ToolCallRepository
    ratings: RatingRepository

    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self, tenant_id: str, *, autocommit: bool = False) -> UnitOfWork:
        """A unit of work; with `autocommit`, each statement commits as it runs, so an update
        of a row every worker contends for holds its lock only while the server runs it."""
        ...


class StallFinder(Protocol):
    def stalled(self, before: datetime, limit: int) -> list[TaskRef]:
        """Unfinished tasks, of any tenant, whose heartbeat stopped before `before`."""
        ...

    def due_deliveries(self, now: datetime, limit: int) -> list[DeliveryRef]:
        """Pending webhook deliveries, of any tenant, due by `now` and not leased."""
        ...

    def forget_idempotency_keys(self, before: datetime, limit: int) -> int:
        """Delete at most `limit` idempotency keys, of any tenant, claimed before `before`;
        answers how many went."""
        ...


class Record(UnitOfWorkFactory, StallFinder, Protocol):
    """The record as a process holds it: a unit of work per tenant, and the few reads that
    cross tenants (the sweeper's, and which tenant a message's task belongs to)."""

    def owner_of(self, task_id: UUID) -> str | None: ...
    def is_reachable(self) -> bool: ...


class MemoryStore(Protocol):
    """The fast shared view of memory (Redis); the record of it is MemoryRepository."""

    def put(self, item: MemoryItem) -> None: ...
    def put_many(self, items: Sequence[MemoryItem]) -> None: ...
    def is_built(self, tenant_id: str, network_id: UUID) -> bool: ...
    def mark_built(self, tenant_id: str, network_id: UUID, ttl_seconds: int) -> None: ...
    def claim_rebuild(self, tenant_id: str, network_id: UUID, lease_seconds: int) -> bool:
        """Whether the caller may rebuild the network's view now: one caller at a time, until
        it releases the claim or `lease_seconds` pass."""
        ...

    def release_rebuild(self, tenant_id: str, network_id: UUID) -> None: ...
    def query(self, tenant_id: str, network_id: UUID, query: MemoryQuery) -> list[MemoryItem]: ...
    def for_subtasks(
        self, tenant_id: str, network_id: UUID, task_id: UUID, keys: Sequence[str]
    ) -> list[MemoryItem]: ...
    def search(
        self,
        tenant_id: str,
        network_id: UUID,
        terms: Mapping[str, float],
        query: MemoryQuery,
        *,
        pool: int,
    ) -> list[Candidate]:
        """Items of the query's types at or above its floor that hold any of the normalised
        `terms` (each with its weight in the query), with their BM25 score, best first: of
        the `pool` most relevant, those that pass the floor; their content not yet opened."""
        ...

    def get_many(
        self, tenant_id: str, network_id: UUID, item_ids: Sequence[UUID]
    ) -> list[MemoryItem]:
        """The items, in the order asked; one not in the view is left out."""
        ...

    def held(self, tenant_id: str, network_id: UUID) -> set[UUID]:
        """The ids of every item the view holds."""
        ...

    def forget(self, tenant_id: str, network_id: UUID, item_ids: Sequence[UUID]) -> None:
        """Take items out of the view, with their index entries: for whatever removes items
        one by one (nothing yet; purge_network takes a network's index with it)."""
        ...

    def purge_network(self, tenant_id: str, network_id: UUID) -> None: ...
    def set_confidence(
        self, tenant_id: str, network_id: UUID, item_id: UUID, confidence: float, *, at: datetime
    ) -> None:
        """Give the view's copy of the item the confidence the record changed to `at`; a copy
        already carrying a later change keeps it, and an item not in the view stays out."""
        ...

    def is_reachable(self) -> bool: ...


class TaskRevisions(Protocol):
    """Each task's revision in Redis, and a wait for the next one: the live side of the log.

    The record is the truth; this is a copy every commit updates after the fact. Each method
    raises Unavailable when Redis does not answer, and callers fall back to the record.
    """

    def current(self, tenant_id: str, network_id: UUID, task_id: UUID) -> Revision | None:
        """The task's latest revision as last published, None if none is known."""
        ...

    def wait(
        self, tenant_id: str, network_id: UUID, task_id: UUID, *, after: int, timeout: float
    ) -> Revision | None:
        """Block until the task's revision passes `after` (answering it) or `timeout` seconds
        pass (None); holds no database connection meanwhile."""
        ...

    def publish(self, changes: Sequence[TaskChange]) -> None:
        """Tell every waiter of these tasks; a revision never goes back."""
        ...

    def close_network(self, tenant_id: str, network_id: UUID, *, now: float) -> None:
        """Announce nothing more of the network's tasks (`now`: seconds since the epoch): it is
        being deleted, and an announcement that comes late must not outlive it."""
        ...

    def reopen_network(self, tenant_id: str, network_id: UUID) -> None:
        """Undo close_network: the network's delete failed, and it lives on."""
        ...


class AgentActivity(Protocol):
    """The steps each agent is running now, each under a lease that ends by itself."""

    def began(
        self, tenant_id: str, agent_id: UUID, step: str, *, now: datetime, until: datetime
    ) -> None: ...
    def ended(self, tenant_id: str, agent_id: UUID, step: str) -> None: ...
    def in_flight(
        self, tenant_id: str, agent_ids: Sequence[UUID], *, now: datetime
    ) -> dict[UUID, int]: ...
    def forget(self, tenant_id: str, agent_ids: Sequence[UUID]) -> None:
        """Drop the agents' leases (their network or the agents were deleted)."""
        ...


@dataclass(frozen=True)
class ToolCall:
    """A tool call a model asked for: its id (what the result answers), name and arguments."""

    id: str
    name: str
    arguments: dict[str, object]


@dataclass(frozen=True)
class Message:
    role: str  # "system", "user", "assistant" or "tool"
    content: str
    tool_calls: tuple[ToolCall, ...] = ()  # an assistant's: the calls it asked for
    tool_call_id: str | None = None  # a tool result's: the call it answers


@dataclass(frozen=True)
class Completion:
    text: str
    model: str
    usage: Usage
    latency_ms: float
    tool_calls: tuple[ToolCall, ...] = ()  # the calls it asks for; empty when it answered


class ToolUnavailable(MeshError):
    """An MCP server could not be reached, did not answer within the timeout, or broke the
    protocol. `may_have_run` says whether a tools/call had been sent when it failed: a tool
    that is not idempotent must not be retried blindly when it is True."""

    def __init__(self, server: str, cause: str, *, may_have_run: bool = False) -> None:
        super().__init__(f"MCP server {server} is unavailable: {cause}")
        self.server, self.cause, self.may_have_run = server, cause, may_have_run


@dataclass(frozen=True)
class ToolInfo:
    server: str  # its URL without credentials or query, or its program: safe to log and show
    name: str
    description: str
    input_schema: dict[str, Any]
    idempotent: bool


@dataclass(frozen=True)
class ToolResult:
    text: str
    is_error: bool
    latency_ms: float  # the whole exchange: connect, initialize, call and close


class ToolClient(Protocol):
    """Tools on MCP servers (meshcore.adapters.mcp_tools.McpTools); both methods block.
    A server is its URL, or the command (program and arguments) it runs as over stdio."""

    def list_tools(self, url: McpEndpoint, headers: dict[str, str] | None = None) -> list[ToolInfo]:
        """The server's tools; ToolUnavailable when it cannot be asked. `headers` (its
        credentials) go with every request to it."""
        ...

    def call_tool(
        self,
        url: McpEndpoint,
        name: str,
        arguments: dict[str, object],
        headers: dict[str, str] | None = None,
    ) -> ToolResult:
        """Call one tool: its result (an error result when the tool or the server refused
        the call), or ToolUnavailable (see `may_have_run`)."""
        ...


class ModelClient(Protocol):
    def complete(
        self,
        messages: Sequence[Message],
        *,
        chain: Sequence[str] | None,
        temperature: float,
        max_tokens: int,
        timeout_s: float,
        validate: Callable[[str], object] | None = None,
        is_wanted: Callable[[], bool] | None = None,
        tools: Sequence[dict[str, object]] | None = None,
    ) -> Completion:
        """The first good answer along the chain. `validate` raises ValueError on an answer
        that is not what was asked for: the model gets one corrected retry, then the next
        model is tried. Raises ModelUnavailable when no model answers. `is_wanted` is asked
        before every request (a retry, the next model): False raises CallAbandoned and no
        request is sent. `tools` (OpenAI function specs) may be called: a completion that
        asks for calls has `tool_calls`, and is not validated."""
        ...


@dataclass(frozen=True)
class Delivery:
    """Where the broker delivered a step: recorded with it, so the log shows where it ran."""

    queue: str | None = None
    worker: str | None = None


@dataclass(frozen=True)
class TaskRef:
    """What a queued message carries about a task: ids, never objects."""

    tenant_id: str
    task_id: UUID
    priority: Priority


@dataclass(frozen=True)
class DeliveryRef:
    """What a queued webhook message carries: ids, never objects."""

    tenant_id: str
    delivery_id: UUID


class Dispatcher(Protocol):
    def coordinate(self, ref: TaskRef, *, new: bool = False) -> None:
        """Plan the task's iteration; `new`: its first message, which waits behind the work
        of tasks already started, so that they finish before more begin."""
        ...

    def run_wave(
        self, ref: TaskRef, iteration: int, wave: int, subtasks: Sequence[PlannedSubtask]
    ) -> None: ...
    def review(self, ref: TaskRef, iteration: int) -> None: ...
    def collect(self, ref: TaskRef, iteration: int, wave: int) -> None: ...
    def expire(self, ref: TaskRef, at: datetime) -> None: ...
    def deliver_webhook(self, ref: DeliveryRef, *, countdown: float = 0.0) -> None:
        """Send one webhook delivery's next attempt (queue `webhooks`), after `countdown` s."""
        ...


class WebhookSender(Protocol):
    def refusal(self, url: str) -> str | None:
        """Why Mesh will not call `url` (its host resolves to a refused address, or does not
        resolve), or None: checked when a webhook is registered."""
        ...

    def send(self, url: str, *, body: str, headers: dict[str, str]) -> Attempt:
        """POST `body` to `url`, resolving its host once and connecting to the address that
        was checked; what came of it (never raises for the receiver's failures)."""
        ...


class Clock(Protocol):
    def now(self) -> datetime: ...


class BrokerEpoch(Protocol):
    """Since when Redis holds the fleet's data; a new epoch means the queues were lost."""

    def start(self, now: datetime) -> None:
        """Begin an epoch unless one is running (a worker starting on a fresh Redis)."""
        ...

    def lost_since(self, now: datetime) -> datetime | None:
        """When Redis's current data began, if it lost what it held since the last check.

        The epoch gone (this call begins one at `now`) or changed since this process last
        looked: every message, unacknowledged step and chord counter went with it.
        """
        ...


class Backlog(Protocol):
    """The fleet's waiting work: messages on the task queues that no worker has taken yet."""

    def depth(self) -> int:
        """Messages waiting on every task queue, summed; Unavailable when it cannot be read."""
        ...


class KeyStore(Protocol):
    """The record's API keys. Keys are found by id across tenants (the id names the tenant);
    every other use is scoped to the tenant it is given."""

    def add(self, key: ApiKey, digest: str) -> None: ...
    def find(self, key_id: str) -> tuple[ApiKey, str] | None:
        """The key with its stored digest, revoked or not; None if there is no such key."""
        ...

    def list(self, tenant_id: str | None) -> list[ApiKey]:
        """The tenant's keys, oldest first (every tenant's with None)."""
        ...

    def revoke(self, key_id: str, tenant_id: str | None, now: datetime) -> ApiKey:
        """Mark the key revoked (NotFound if the tenant has no such key); revoking twice is a
        no-op that answers the key."""
        ...


class AuditTrail(Protocol):
    """The append-only record of writes and refusals; it keeps no content."""

    def append(self, event: AuditEvent) -> None: ...
    def list(
        self, tenant_id: str, page: Page, *, before: int | None = None
    ) -> tuple[list[AuditEvent], int]:
        """The tenant's events newest first (only those older than event `before`), and
        how many there are in all."""
        ...


class TenantRecord(Protocol):
    """Every row of one tenant, across the record's tables."""

    def erase(self, tenant_id: str) -> dict[str, int]:
        """Delete the tenant's rows in every table but the audit trail, in one transaction;
        answers the rows removed per table."""
        ...


class TenantState(Protocol):
    """Every key of one tenant in Redis (mesh:{tenant}:*)."""

    def purge(self, tenant_id: str) -> int:
        """Delete the tenant's keys; answers how many went."""
        ...
