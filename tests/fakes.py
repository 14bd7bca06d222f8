"""In-memory stand-ins for the ports in `meshcore.ports`, and a whole mesh built from them.

FakeDatabase         the committed record, shared by every unit of work made from it
FakeUnitOfWork       a transaction over a copy of the record: only commit() writes it back
FakeUnitOfWorkFactory  the factory the services take: one FakeUnitOfWork per call, per tenant
FakeDispatcher       records each message; drain() delivers them to a Coordination, in order
FakeClock            holds time still until a test advances it
FakeModelClient      scripted answers where a test gives them, the offline model's otherwise
FakeKeyStore         API keys with their digests in a dict; counts how often a key is looked up
FakeBacklog          the fleet's waiting messages as a number a test sets (none by default)
FakeMesh             the services of one tenant wired to all of the above and to fakeredis
"""

from __future__ import annotations

import copy
import itertools
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Self, TypeVar
from uuid import UUID, uuid4

import fakeredis

# The offline model imports litellm through meshcore.adapters.litellm_env, which keeps it off
# the network.
from meshcore.adapters.offline_model import LABEL
from meshcore.adapters.offline_model import answer as offline_answer
from meshcore.adapters.offline_model import respond as offline_respond
from meshcore.adapters.redis_activity import RedisAgentActivity
from meshcore.adapters.redis_epoch import RedisEpoch
from meshcore.adapters.redis_memory import RedisMemoryStore
from meshcore.adapters.redis_revisions import RedisTaskRevisions
from meshcore.adapters.sealing import Sealer
from meshcore.bootstrap import Adapters, Mesh
from meshcore.domain import contradiction, restatement
from meshcore.domain.agent_types import AgentTypeDef, own_queue
from meshcore.domain.confidence import ConfidenceChange, ConfidenceSource, Move
from meshcore.domain.errors import (
    CallAbandoned,
    Conflict,
    MeshError,
    ModelUnavailable,
    NotFound,
    TaskEnded,
    Unavailable,
)
from meshcore.domain.idempotency import Created, IdempotencyKey, PriorCreate
from meshcore.domain.keys import ApiKey
from meshcore.domain.memory import MemoryItem, MemoryQuery
from meshcore.domain.network import Agent, Network, NetworkConfig
from meshcore.domain.plan import Plan, PlannedSubtask, parse_plan, plan_to_json
from meshcore.domain.quotas import Quota
from meshcore.domain.rating import Rating
from meshcore.domain.task import (
    HistoryEntry,
    Revision,
    StepRecord,
    Subtask,
    Task,
    TaskChange,
    TaskStatus,
    TaskSummary,
    Usage,
    plan_entry,
    step_entry,
)
from meshcore.domain.webhooks import Attempt, DeliveryStatus
from meshcore.domain.webhooks import Delivery as WebhookDelivery
from meshcore.ports import (
    Completion,
    Delivery,
    DeliveryRef,
    Message,
    Page,
    TaskRef,
    ToolCall,
    ToolCallRecord,
    ToolCallStatus,
)
from meshcore.services.agent_steps import StepRunner
from meshcore.services.agent_types import AgentTypeService
from meshcore.services.coordination import Coordination
from meshcore.services.learning import MemoryLearning
from meshcore.services.memory import MemoryService
from meshcore.services.networks import NetworkService
from meshcore.services.ratings import RatingService
from meshcore.services.tasks import TaskService
from meshcore.settings import Settings
from tests.conftest import DATA_KEYS
from tests.fake_lifetimes import FakeLifetimeRepository

START = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
OFFLINE_LABEL = LABEL  # what every offline answer says of itself
FAKE_MODEL = "fake/offline"

StepKey = tuple[UUID, int, str]
K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True)
class SubtaskRow:
    tenant_id: str
    position: int
    wave: int
    planned: PlannedSubtask


@dataclass
class Tables:
    """The rows of the record, keyed as the SQL tables are. A row is replaced, never changed in
    place, so a transaction's copy of the tables can share rows with the committed ones."""

    networks: dict[UUID, Network] = field(default_factory=dict)
    agents: dict[UUID, Agent] = field(default_factory=dict)
    tasks: dict[UUID, Task] = field(default_factory=dict)
    events: dict[int, tuple[str, UUID, HistoryEntry]] = field(default_factory=dict)
    subtasks: dict[StepKey, SubtaskRow] = field(default_factory=dict)
    steps: dict[StepKey, tuple[str, StepRecord]] = field(default_factory=dict)
    memory: dict[UUID, MemoryItem] = field(default_factory=dict)
    attempts: dict[StepKey, tuple[int, datetime]] = field(default_factory=dict)
    idempotency: dict[tuple[str, str], PriorCreate] = field(default_factory=dict)
    deliveries: dict[UUID, WebhookDelivery] = field(default_factory=dict)
    leases: dict[UUID, datetime] = field(default_factory=dict)
    # (tenant, name, version) -> (definition, is_deleted)
    agent_types: dict[tuple[str, str, int], tuple[AgentTypeDef, bool]] = field(default_factory=dict)
    # (task, iteration, key, number) -> (tenant, call)
    tool_calls: dict[tuple[UUID, int, str, int], tuple[str, ToolCallRecord]] = field(
        default_factory=dict
    )
    ratings: dict[UUID, tuple[str, Rating]] = field(default_factory=dict)  # task -> (tenant, _)
    # change id -> (tenant, change); a change goes with its item, as the SQL schema cascades.
    confidence_changes: dict[UUID, tuple[str, ConfidenceChange]] = field(default_factory=dict)
    # (item, other) -> (tenant, at): two contradicting items, one row each way.
    memory_links: dict[tuple[UUID, UUID], tuple[str, datetime]] = field(default_factory=dict)
    # (task, iteration, subtask) -> (tenant, holder item, the step's output item)
    memory_restatements: dict[tuple[UUID, int, str], tuple[str, UUID, MemoryItem]] = field(
        default_factory=dict
    )

    def names(self) -> Iterator[str]:
        return (f.name for f in fields(self))

    def snapshot(self) -> Tables:
        # Shallow: stored rows are never changed in place, only replaced, so sharing is safe.
        return Tables(**{name: dict(getattr(self, name)) for name in self.names()})


class FakeDatabase:
    """The committed state; a unit of work writes to it only when it commits."""

    def __init__(self) -> None:
        self.committed = Tables()
        # Like a SERIAL column: numbers are handed out outside any transaction.
        self.sequence = itertools.count(1)

    def apply(self, before: Tables, after: Tables) -> None:
        """Write what a transaction changed, row by row, leaving other rows as they are."""
        for name in before.names():
            shared, old, new = (getattr(t, name) for t in (self.committed, before, after))
            for key in old.keys() - new.keys():
                shared.pop(key, None)
            for key, value in new.items():
                if old.get(key) is not value:
                    shared[key] = value


class _Repository:
    def __init__(
        self,
        tables: Tables,
        tenant_id: str,
        database: FakeDatabase,
        changes: dict[UUID, TaskChange] | None = None,
    ) -> None:
        self._rows, self._tenant_id, self._db = tables, tenant_id, database
        self._changes = changes if changes is not None else {}


class FakeNetworkRepository(_Repository):
    def add(self, network: Network) -> None:
        self._rows.networks[network.id] = copy.deepcopy(replace(network, agents=[]))
        for agent in network.agents:
            self._rows.agents[agent.id] = agent

    def get(self, network_id: UUID, *, with_usage: bool = False) -> Network:
        network = self._rows.networks.get(network_id)
        if network is None or network.tenant_id != self._tenant_id:
            raise NotFound("network", network_id)
        agents = FakeAgentRepository(self._rows, self._tenant_id, self._db).list(network_id)
        return replace(copy.deepcopy(network), agents=agents)

    def require(self, network_id: UUID) -> None:
        self.get(network_id)

    def require_locked(self, network_id: UUID) -> None:
        self.get(network_id)  # one unit of work at a time: nothing to take turns with

    def set_webhook_secret(self, network_id: UUID, secret: str) -> None:
        network = self.get(network_id)
        stored = replace(self._rows.networks[network.id], webhook_secret=secret)
        self._rows.networks[network.id] = stored

    def webhook_secret(self, network_id: UUID) -> str | None:
        self.get(network_id)
        return self._rows.networks[network_id].webhook_secret

    def list(self, page: Page) -> tuple[list[Network], int]:
        mine = [n for n in self._rows.networks.values() if n.tenant_id == self._tenant_id]
        mine.sort(key=lambda n: (-n.created_at.timestamp(), str(n.id)))
        chosen = mine[page.offset : page.offset + page.limit]
        return [self.get(n.id) for n in chosen], len(mine)

    def delete(self, network_id: UUID) -> None:
        self.get(network_id)
        rows = self._rows
        # The SQL schema cascades to everything the network owns; so does the fake.
        tasks = {t.id for t in rows.tasks.values() if t.network_id == network_id}
        _drop(rows.networks, lambda key, _: key == network_id)
        _drop(rows.agents, lambda _, agent: agent.network_id == network_id)
        _drop(rows.memory, lambda _, item: item.network_id == network_id)
        _drop(rows.confidence_changes, lambda _, row: row[1].item_id not in rows.memory)
        _drop(rows.memory_links, lambda key, _: not set(key) <= rows.memory.keys())
        _drop(rows.memory_restatements, lambda _, row: row[1] not in rows.memory)
        _drop(rows.tasks, lambda key, _: key in tasks)
        _drop(rows.events, lambda _, event: event[1] in tasks)
        _drop(rows.subtasks, lambda key, _: key[0] in tasks)
        _drop(rows.steps, lambda key, _: key[0] in tasks)
        _drop(rows.attempts, lambda key, _: key[0] in tasks)
        _drop(rows.tool_calls, lambda key, _: key[0] in tasks)
        _drop(rows.ratings, lambda key, _: key in tasks)
        doomed = {d.id for d in rows.deliveries.values() if d.task_id in tasks}
        _drop(rows.deliveries, lambda key, _: key in doomed)
        _drop(rows.leases, lambda key, _: key in doomed)


def _drop(table: dict[K, V], is_doomed: Callable[[K, V], bool]) -> None:
    for key in [k for k, v in table.items() if is_doomed(k, v)]:
        del table[key]


class FakeAgentRepository(_Repository):
    def add(self, agent: Agent) -> None:
        self._rows.agents[agent.id] = agent

    def get(self, network_id: UUID, agent_id: UUID) -> Agent:
        agent = self._rows.agents.get(agent_id)
        if agent is None or not self._is_mine(agent, network_id):
            raise NotFound("agent", agent_id)
        return agent

    def list(self, network_id: UUID) -> list[Agent]:
        # In the order added, as SQL orders by position (a dict keeps insertion order).
        return [a for a in self._rows.agents.values() if self._is_mine(a, network_id)]

    def delete(self, network_id: UUID, agent_id: UUID) -> None:
        self.get(network_id, agent_id)
        del self._rows.agents[agent_id]

    def record_call(
        self,
        network_id: UUID,
        agent_type: str,
        *,
        latency_ms: float,
        usage: Usage,
        is_failure: bool,
    ) -> None:
        agent = Network.agent_of_in(self.list(network_id), agent_type)
        if agent is None:
            return
        m = agent.metrics
        self._rows.agents[agent.id] = replace(
            self._rows.agents[agent.id],
            metrics=replace(
                m,
                calls=m.calls + 1,
                failures=m.failures + int(is_failure),
                latency_ms_total=m.latency_ms_total + latency_ms,
                input_tokens=m.input_tokens + usage.input_tokens,
                output_tokens=m.output_tokens + usage.output_tokens,
                cost_usd=m.cost_usd + usage.cost_usd,
            ),
        )

    def _is_mine(self, agent: Agent, network_id: UUID) -> bool:
        return agent.tenant_id == self._tenant_id and agent.network_id == network_id


class FakeTaskRepository(_Repository):
    def add(self, task: Task) -> None:
        task.revision = 0
        self._rows.tasks[task.id] = _row_of(task)
        self._append_history(task)

    # The fake runs one unit of work at a time, so a locked read is an ordinary one here.
    def get(self, task_id: UUID) -> Task:
        task = self._rows.tasks.get(task_id)
        if task is None or task.tenant_id != self._tenant_id:
            raise NotFound("task", task_id)
        return copy.deepcopy(task)

    def get_locked(self, task_id: UUID) -> Task:
        return self.get(task_id)

    def in_network(self, task_id: UUID, *, network_id: UUID) -> Task:
        task = self.get(task_id)
        if task.network_id != network_id:
            raise NotFound("task", task_id)
        return task

    def locked_in_network(self, task_id: UUID, *, network_id: UUID) -> Task:
        return self.in_network(task_id, network_id=network_id)

    def list(
        self, network_id: UUID, page: Page, status: TaskStatus | None = None
    ) -> tuple[list[Task], int]:
        mine = [
            t
            for t in self._rows.tasks.values()
            if t.tenant_id == self._tenant_id
            and t.network_id == network_id
            and (status is None or t.status is status)
        ]
        mine.sort(key=lambda t: (-t.created_at.timestamp(), str(t.id)))
        chosen = mine[page.offset : page.offset + page.limit]
        return [copy.deepcopy(t) for t in chosen], len(mine)

    def save(self, task: Task) -> None:
        stored = self._rows.tasks.get(task.id)
        if stored is None or stored.tenant_id != self._tenant_id:
            # As SQL: an UPDATE of no row changes nothing, but events need a revision to
            # number them after, and the UPDATE that moves it finds no row.
            if task.new_history:
                raise NotFound("task", task.id)
            return
        # Like the SQL adapter: only the columns that change as a task runs.
        self._rows.tasks[task.id] = replace(
            stored,
            status=task.status,
            iteration=task.iteration,
            wave=task.wave,
            heartbeat_at=task.heartbeat_at,
            is_held=task.is_held,
            result=copy.deepcopy(task.result),
            error=task.error,
            usage=task.usage,
            updated_at=task.updated_at,
            deadline_at=task.deadline_at,
        )
        self._append_history(task)

    def add_webhook_attempt(self, task_id: UUID, entry: HistoryEntry) -> None:
        task = self.get(task_id)  # no TaskEnded: the one event after the end
        self._append(task, [replace(entry, status=task.status)])

    def touch(self, task_id: UUID, now: datetime) -> None:
        stored = self._rows.tasks.get(task_id)
        if stored is not None and stored.tenant_id == self._tenant_id:
            self._rows.tasks[task_id] = replace(stored, heartbeat_at=now)

    def history(self, task_id: UUID) -> list[HistoryEntry]:
        return sorted(
            (
                copy.deepcopy(entry)
                for _, (tenant, of_task, entry) in self._rows.events.items()
                if tenant == self._tenant_id and of_task == task_id
            ),
            key=lambda e: e.seq,
        )

    def events(self, task_id: UUID, *, after: int, limit: int) -> list[HistoryEntry]:
        return [e for e in self.history(task_id) if e.seq > after][:limit]

    def revision(self, task_id: UUID, *, network_id: UUID) -> Revision:
        task = self.in_network(task_id, network_id=network_id)
        return Revision(task.revision, task.status)

    def summary(self, task_id: UUID, *, network_id: UUID) -> TaskSummary:
        task = self.in_network(task_id, network_id=network_id)
        current = self.subtasks(task_id, task.iteration)
        result = task.result
        return TaskSummary(
            id=task.id,
            network_id=task.network_id,
            status=task.status,
            revision=task.revision,
            iteration=task.iteration,
            wave=task.wave,
            steps_done=sum(s.step is not None for s in current),
            steps_planned=len(current),
            answer=result.answer if result else None,
            score=result.score if result else None,
        )

    def begin_step(self, entry: HistoryEntry, task_id: UUID, *, now: datetime) -> None:
        task = self._bumped(task_id)
        self._rows.tasks[task_id] = replace(self._rows.tasks[task_id], heartbeat_at=now)
        self._append(task, [replace(entry, status=task.status)])

    def add_plan(self, task_id: UUID, iteration: int, plan: Plan, *, now: datetime) -> None:
        added = []
        for position, planned in enumerate(plan.subtasks):
            row = SubtaskRow(self._tenant_id, position, plan.wave_of(planned.key), planned)
            if (task_id, iteration, planned.key) not in self._rows.subtasks:
                self._rows.subtasks[(task_id, iteration, planned.key)] = row
                added.append((planned, row.wave))
        if added:
            task = self._bumped(task_id)
            entry = plan_entry(added, iteration=iteration, status=task.status, now=now)
            self._append(task, [entry])

    def replace_plan(self, task_id: UUID, iteration: int, plan: Plan, *, now: datetime) -> None:
        task = self._bumped(task_id)
        for key in [k for k in self._rows.subtasks if k[0] == task_id and k[1] == iteration]:
            del self._rows.subtasks[key]
        planned = []
        for position, subtask in enumerate(plan.subtasks):
            row = SubtaskRow(self._tenant_id, position, plan.wave_of(subtask.key), subtask)
            self._rows.subtasks[(task_id, iteration, subtask.key)] = row
            planned.append((subtask, row.wave))
        self._append(task, [plan_entry(planned, iteration=iteration, status=task.status, now=now)])

    def subtasks(self, task_id: UUID, iteration: int) -> list[Subtask]:
        return [s for s in self.every_subtask(task_id) if s.iteration == iteration]

    def every_subtask(self, task_id: UUID) -> list[Subtask]:
        rows = sorted(
            (
                (key, row)
                for key, row in self._rows.subtasks.items()
                if key[0] == task_id and row.tenant_id == self._tenant_id
            ),
            key=lambda kv: (kv[0][1], kv[1].wave, kv[1].position),
        )
        steps = FakeStepRepository(self._rows, self._tenant_id, self._db)
        return [
            Subtask(task_id, key[1], row.wave, row.planned, steps.get(*key)) for key, row in rows
        ]

    def subtask(self, task_id: UUID, iteration: int, key: str) -> Subtask | None:
        return next((s for s in self.subtasks(task_id, iteration) if s.key == key), None)

    def add_step(self, step: StepRecord, *, now: datetime) -> None:
        task = self._bumped(step.task_id)
        self._rows.tasks[task.id] = replace(
            self._rows.tasks[task.id], usage=task.usage + step.usage, heartbeat_at=now
        )
        self._append(task, [step_entry(step, task.status, now=now)])

    def _bumped(self, task_id: UUID) -> Task:
        """The stored task, refusing a change to one that has ended (as the SQL UPDATE does)."""
        task = self.get(task_id)
        if task.status.is_terminal:
            raise TaskEnded(task_id, task.status)
        return task

    def _append_history(self, task: Task) -> None:
        stored = self._rows.tasks.get(task.id)
        if stored is None or stored.tenant_id != self._tenant_id or not task.new_history:
            task.new_history.clear()
            return
        count = len(task.new_history)
        task.revision = self._append(stored, list(task.new_history))
        numbered = [
            entry
            for _, (_, of_task, entry) in sorted(self._rows.events.items())
            if of_task == task.id
        ][-count:]
        task.history[len(task.history) - count :] = copy.deepcopy(numbered)
        task.new_history.clear()
        webhook = stored.webhook
        for entry in numbered:
            if webhook is not None and webhook.wants(entry.type):
                delivery = WebhookDelivery(
                    id=uuid4(),
                    tenant_id=self._tenant_id,
                    task_id=task.id,
                    network_id=task.network_id,
                    event_seq=entry.seq,
                    event_type=entry.type,
                    status=DeliveryStatus.PENDING,
                    attempts=0,
                    next_attempt_at=entry.at,
                )
                self._rows.deliveries[delivery.id] = delivery

    def _append(self, stored: Task, entries: list[HistoryEntry]) -> int:
        """Number the entries after the stored task's revision, and move it on."""
        revision = stored.revision
        for entry in entries:
            revision += 1
            numbered = replace(entry, seq=revision)
            self._rows.events[next(self._db.sequence)] = (self._tenant_id, stored.id, numbered)
        current = self._rows.tasks[stored.id]
        self._rows.tasks[stored.id] = replace(current, revision=revision)
        self._changes[stored.id] = TaskChange(
            self._tenant_id, stored.network_id, stored.id, revision, current.status
        )
        return revision


def _row_of(task: Task) -> Task:
    # The record keeps a task's own plan as its JSON (mapping.task_row): the client's words,
    # without the version or queue a subtask may have been pinned to.
    plan = parse_plan(plan_to_json(task.plan)) if task.plan is not None else None
    return replace(copy.deepcopy(task), plan=plan, history=[], new_history=[], subtasks=[])


def _require_task(rows: Tables, task_id: UUID) -> None:
    """Refuse a row of a task the record lacks (its network was deleted while a step ran),
    as SQL's foreign keys do and its unit of work reports them."""
    if task_id not in rows.tasks:
        raise NotFound("task or network", "of this write")


class FakeStepRepository(_Repository):
    def begin_attempt(
        self, task_id: UUID, iteration: int, key: str, *, now: datetime, lease_seconds: float
    ) -> int | None:
        _require_task(self._rows, task_id)
        step = (task_id, iteration, key)
        attempts, started = self._rows.attempts.get(step, (0, None))
        # As SQL, which takes the lease over only from an attempt begun before it went stale:
        # a lease holds to its very end.
        if started is not None and started >= now - timedelta(seconds=lease_seconds):
            return None
        self._rows.attempts[step] = (attempts + 1, now)
        return attempts + 1

    def renew_lease(self, task_id: UUID, iteration: int, key: str, *, now: datetime) -> None:
        step, task = (task_id, iteration, key), self._rows.tasks.get(task_id)
        # As SQL's, which row-level security holds to the tenant's own attempts.
        if step in self._rows.attempts and task is not None and task.tenant_id == self._tenant_id:
            self._rows.attempts[step] = (self._rows.attempts[step][0], now)

    def record(self, step: StepRecord) -> tuple[StepRecord, bool]:
        _require_task(self._rows, step.task_id)
        key = (step.task_id, step.iteration, step.key)
        # First write wins, against this transaction and against what others have committed.
        existing = self._rows.steps.get(key) or self._db.committed.steps.get(key)
        if existing is not None:
            return existing[1], False
        # The step log has no column for the attempt (the step's history event tells it):
        # a step reads back with the default, as from SQL.
        logged = replace(step, attempt=1)
        self._rows.steps[key] = (self._tenant_id, logged)
        return logged, True

    def get(self, task_id: UUID, iteration: int, key: str) -> StepRecord | None:
        row = self._rows.steps.get((task_id, iteration, key))
        return row[1] if row is not None and row[0] == self._tenant_id else None

    def for_iteration(self, task_id: UUID, iteration: int) -> list[StepRecord]:
        mine = [
            step
            for (of_task, of_iteration, _), (tenant, step) in self._rows.steps.items()
            if (of_task, of_iteration, tenant) == (task_id, iteration, self._tenant_id)
        ]
        return sorted(mine, key=lambda s: (s.recorded_at, s.key))


class FakeMemoryRepository(_Repository):
    def add(self, item: MemoryItem) -> None:
        self._rows.memory[item.id] = item

    def restated(self, item: MemoryItem) -> UUID | None:
        # The fake compares normalised texts; SQL compares their keyed hashes.
        found = [m for m in self._rows.memory.values() if restatement.restates(item, m)]
        return min(found, key=lambda m: (m.created_at, str(m.id))).id if found else None

    def admit(self, item: MemoryItem) -> UUID | None:
        holder = self.restated(item)
        if holder is None:
            self.add(item)
        return holder

    def same_subject(self, item: MemoryItem) -> list[MemoryItem]:
        subject = contradiction.stance(item.content).subject
        if not (contradiction.may_contradict(item) and subject):
            return []
        found = [
            m
            for m in self._rows.memory.values()
            if (m.tenant_id, m.network_id, m.type) == (self._tenant_id, item.network_id, item.type)
            and m.id != item.id
            and contradiction.stance(m.content).subject == subject
        ]
        found.sort(key=lambda m: (-m.created_at.timestamp(), str(m.id)))
        return found[:100]

    def link_contradictions(
        self, item_id: UUID, other_ids: Sequence[UUID], *, at: datetime
    ) -> None:
        for other in other_ids:
            for pair in ((item_id, other), (other, item_id)):
                self._rows.memory_links.setdefault(pair, (self._tenant_id, at))

    def contradictions(self, item_ids: Sequence[UUID]) -> dict[UUID, tuple[UUID, ...]]:
        links = sorted(
            (at, str(other), item, other)
            for (item, other), (tenant, at) in self._rows.memory_links.items()
            if tenant == self._tenant_id and item in item_ids
        )
        found: dict[UUID, tuple[UUID, ...]] = {}
        for _, _, item, other in links:
            found[item] = (*found.get(item, ()), other)
        return found

    def note_restatement(self, output: MemoryItem, holder_id: UUID) -> None:
        iteration = output.metadata.get("iteration")
        if output.task_id and output.subtask and isinstance(iteration, int):
            key = (UUID(output.task_id), iteration, output.subtask)
            self._rows.memory_restatements.setdefault(key, (self._tenant_id, holder_id, output))

    def restatements(
        self, network_id: UUID, task_id: UUID, keys: Sequence[str]
    ) -> list[MemoryItem]:
        found = []
        for (task, iteration, subtask), row in self._rows.memory_restatements.items():
            tenant, holder_id, output = row
            holder = self._rows.memory.get(holder_id)
            if (tenant, task) != (self._tenant_id, task_id) or subtask not in keys:
                continue
            if holder is None or holder.network_id != network_id:
                continue
            agent = output.metadata.get("source_agent")
            agent_id = output.metadata.get("agent_id")
            shown = restatement.as_output(
                holder,
                source_agent=agent if isinstance(agent, str) else None,
                agent_id=str(agent_id) if agent_id else None,
                task_id=str(task),
                subtask=subtask,
                iteration=iteration,
            )
            found.append((output.created_at, subtask, shown))
        return [shown for _, _, shown in sorted(found, key=lambda f: (f[0], f[1]))]

    def get(self, network_id: UUID, item_id: UUID) -> MemoryItem:
        item = self._rows.memory.get(item_id)
        if item is None or (item.tenant_id, item.network_id) != (self._tenant_id, network_id):
            raise NotFound("memory item", item_id)
        return item

    def list(self, network_id: UUID, query: MemoryQuery) -> list[MemoryItem]:
        found = [
            m
            for m in self._rows.memory.values()
            if m.tenant_id == self._tenant_id
            and m.network_id == network_id
            and m.type in query.types
            and m.confidence >= query.min_confidence
            and (query.task_id is None or m.task_id == str(query.task_id))
        ]
        # Newest first, then by id: as SQL orders them, ties included.
        found.sort(key=lambda m: (-m.created_at.timestamp(), str(m.id)))
        return found[query.offset : query.offset + query.limit]

    def count(self, network_id: UUID, query: MemoryQuery) -> int:
        return len(self.list(network_id, replace(query, offset=0, limit=len(self._rows.memory))))

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
        # No row lock: the unit tests run one unit of work at a time; SQL's is the contract's.
        try:
            item = self.get(network_id, item_id)
        except NotFound:
            return None
        history = self.confidence_history(network_id, item_id)
        change = ConfidenceChange.of(
            item_id,
            item.confidence,
            move,
            source=source,
            reason=reason,
            task_id=task_id,
            at=at,
            last_at=history[-1].at if history else None,
        )
        if change is not None:
            self._rows.memory[item_id] = replace(item, confidence=change.after)
            self._rows.confidence_changes[change.id] = (self._tenant_id, change)
        return change

    def confidence_history(self, network_id: UUID, item_id: UUID) -> list[ConfidenceChange]:
        try:
            self.get(network_id, item_id)
        except NotFound:
            return []
        found = [
            change
            for tenant, change in self._rows.confidence_changes.values()
            if tenant == self._tenant_id and change.item_id == item_id
        ]
        return sorted(found, key=lambda c: (c.at, str(c.id)))


class FakeQuotaRepository(_Repository):
    """Counts as the SQL one does; holds no lock, as the fakes run one call at a time."""

    def __init__(self, tables: Tables, tenant_id: str, database: FakeDatabase) -> None:
        super().__init__(tables, tenant_id, database)
        self.held: list[tuple[Quota, UUID | None]] = []

    def hold(self, quota: Quota, scope: UUID | None = None) -> None:
        self.held.append((quota, scope))

    def used(self, quota: Quota, scope: UUID | None = None, *, up_to: int) -> int:
        rows: list[Network | Agent | Task | MemoryItem]
        if quota is Quota.NETWORKS:
            rows = list(self._rows.networks.values())
        elif quota is Quota.TASKS_IN_FLIGHT:
            rows = [t for t in self._rows.tasks.values() if not t.status.is_terminal]
        else:
            table = self._rows.agents if quota is Quota.AGENTS else self._rows.memory
            rows = [r for r in table.values() if r.network_id == scope]
        return min(sum(r.tenant_id == self._tenant_id for r in rows), up_to)


class FakeIdempotencyRepository(_Repository):
    # The fake runs one unit of work at a time: no create is ever in flight beside another.
    def claim(
        self, claim: IdempotencyKey, created: Created, *, now: datetime, expired_before: datetime
    ) -> PriorCreate | None:
        prior = self._rows.idempotency.get((self._tenant_id, claim.key))
        if prior is not None and prior.created_at >= expired_before:
            return prior
        self._rows.idempotency[(self._tenant_id, claim.key)] = PriorCreate(
            claim.key, claim.fingerprint, created, None, now
        )
        return None

    def made(self, key: str, resource_id: UUID) -> None:
        prior = self._rows.idempotency[(self._tenant_id, key)]
        self._rows.idempotency[(self._tenant_id, key)] = replace(prior, resource_id=resource_id)


class FakeAgentTypeRepository(_Repository):
    def _versions(self, name: str) -> list[tuple[AgentTypeDef, bool]]:
        found = [
            (row, version)
            for (tenant, n, version), row in self._rows.agent_types.items()
            if tenant == self._tenant_id and n == name
        ]
        return [row for row, _ in sorted(found, key=lambda f: f[1])]

    def current(self, names: Sequence[str] | None = None) -> dict[str, AgentTypeDef]:
        mine = {n for (t, n, _) in self._rows.agent_types if t == self._tenant_id}
        wanted = sorted(mine if names is None else mine & set(names))
        latest = {n: self._versions(n)[-1] for n in wanted}
        return {n: d for n, (d, is_deleted) in latest.items() if not is_deleted}

    def version(self, name: str, version: int) -> AgentTypeDef | None:
        found = self._rows.agent_types.get((self._tenant_id, name, version))
        return found[0] if found else None

    def latest_version(self, name: str) -> int:
        versions = self._versions(name)
        return versions[-1][0].version if versions else 0

    def add(self, definition: AgentTypeDef, *, is_deleted: bool = False) -> None:
        key = (self._tenant_id, definition.name, definition.version)
        if key in self._rows.agent_types:
            raise Conflict(f"agent type {definition.name!r} changed meanwhile")
        self._rows.agent_types[key] = (definition, is_deleted)

    def networks_using(self, name: str) -> list[UUID]:
        return sorted(
            {
                a.network_id
                for a in self._rows.agents.values()
                if a.tenant_id == self._tenant_id and a.type == name
            }
        )


class FakeToolCallRepository(_Repository):
    def start(self, call: ToolCallRecord) -> tuple[ToolCallRecord, bool]:
        _require_task(self._rows, call.task_id)
        key = (call.task_id, call.iteration, call.key, call.number)
        existing = self._rows.tool_calls.get(key) or self._db.committed.tool_calls.get(key)
        if existing is not None:
            return existing[1], False
        self._rows.tool_calls[key] = (self._tenant_id, call)
        return call, True

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
        key = (call.task_id, call.iteration, call.key, call.number)
        row = self._rows.tool_calls.get(key)
        if row is None or row[0] != self._tenant_id:
            return  # as SQL's UPDATE, which finds no such row of the tenant's
        tenant, stored = row
        self._rows.tool_calls[key] = (
            tenant,
            replace(
                stored, status=status, result=result, is_error=is_error,
                latency_ms=latency_ms, finished_at=now,
            ),
        )  # fmt: skip

    def for_step(self, task_id: UUID, iteration: int, key: str) -> list[ToolCallRecord]:
        return sorted(
            (
                call
                for (t, i, k, _), (tenant, call) in self._rows.tool_calls.items()
                if (t, i, k, tenant) == (task_id, iteration, key, self._tenant_id)
            ),
            key=lambda c: c.number,
        )


class FakeRatingRepository(_Repository):
    def get(self, task_id: UUID) -> Rating | None:
        found = self._rows.ratings.get(task_id)
        return found[1] if found is not None and found[0] == self._tenant_id else None

    def put(self, rating: Rating) -> None:
        _require_task(self._rows, rating.task_id)
        before = self.get(rating.task_id)
        # As SQL's upsert: the first rating's time stays.
        kept = rating if before is None else replace(rating, created_at=before.created_at)
        self._rows.ratings[rating.task_id] = (self._tenant_id, kept)


class FakeWebhookRepository(_Repository):
    def lease(self, delivery_id: UUID, *, now: datetime, until: datetime) -> WebhookDelivery | None:
        found = self._rows.deliveries.get(delivery_id)
        leased = self._rows.leases.get(delivery_id)
        if (
            found is None
            or found.tenant_id != self._tenant_id
            or found.status is not DeliveryStatus.PENDING
            or found.next_attempt_at > now
            or (leased is not None and leased >= now)
        ):
            return None
        self._rows.leases[delivery_id] = until
        return found

    def record(
        self,
        delivery_id: UUID,
        *,
        attempts: int,
        status: DeliveryStatus,
        next_attempt_at: datetime,
    ) -> None:
        found = self._rows.deliveries.get(delivery_id)
        if found is None or found.tenant_id != self._tenant_id:
            return  # as SQL's UPDATE, which finds no such row of the tenant's
        self._rows.deliveries[delivery_id] = replace(
            found, attempts=attempts, status=status, next_attempt_at=next_attempt_at
        )
        self._rows.leases.pop(delivery_id, None)

    def for_task(self, task_id: UUID) -> list[WebhookDelivery]:
        found = [
            d
            for d in self._rows.deliveries.values()
            if d.task_id == task_id and d.tenant_id == self._tenant_id
        ]
        return sorted(found, key=lambda d: d.event_seq)


class FakeUnitOfWork:
    """Reads the record as it was when the block began; leaving without commit() drops changes."""

    def __init__(
        self,
        database: FakeDatabase,
        tenant_id: str,
        *,
        autocommit: bool = False,
        announce: Callable[[Sequence[TaskChange]], None] | None = None,
    ) -> None:
        self._db, self.tenant_id, self._autocommit = database, tenant_id, autocommit
        self._announce = announce
        self._changes: dict[UUID, TaskChange] = {}
        self.committed = False
        self.commits = 0

    def __enter__(self) -> Self:
        self._before = self._db.committed.snapshot()
        self._rows = self._before.snapshot()
        args = (self._rows, self.tenant_id, self._db)
        self.networks = FakeNetworkRepository(*args)
        self.agents = FakeAgentRepository(*args)
        self.tasks = FakeTaskRepository(*args, self._changes)
        self.steps = FakeStepRepository(*args)
        self.memory = FakeMemoryRepository(*args)
        self.lifetimes = FakeLifetimeRepository(*args)
        self.quotas = FakeQuotaRepository(*args)
        self.idempotency = FakeIdempotencyRepository(*args)
        self.webhooks = FakeWebhookRepository(*args)
        self.agent_types = FakeAgentTypeRepository(*args)
        self.tool_calls = FakeToolCallRepository(*args)
        self.ratings = FakeRatingRepository(*args)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._autocommit and exc is None:
            self.commit()  # as if each write had committed as it ran
        self.rollback()

    def commit(self) -> None:
        self._db.apply(self._before, self._rows)
        self._before = self._rows.snapshot()
        self.committed = True
        self.commits += 1
        changes = list(self._changes.values())
        self._changes.clear()
        if changes and self._announce is not None:
            self._announce(changes)

    def rollback(self) -> None:
        self._changes.clear()
        # In place: the repositories hold these very dicts.
        for name in self._rows.names():
            rows = getattr(self._rows, name)
            rows.clear()
            rows.update(getattr(self._before, name))


class FakeUnitOfWorkFactory:
    """The `UnitOfWorkFactory` port over one FakeDatabase; keeps every unit of work it made."""

    def __init__(
        self,
        database: FakeDatabase | None = None,
        announce: Callable[[Sequence[TaskChange]], None] | None = None,
    ) -> None:
        self.database = database or FakeDatabase()
        self.announce = announce
        self.made: list[FakeUnitOfWork] = []

    def __call__(self, tenant_id: str, *, autocommit: bool = False) -> FakeUnitOfWork:
        uow = FakeUnitOfWork(
            self.database, tenant_id, autocommit=autocommit, announce=self.announce
        )
        self.made.append(uow)
        return uow

    def stalled(self, before: datetime, limit: int) -> list[TaskRef]:
        """The StallFinder port, as SQL's query: unfinished, unheld tasks of any tenant whose
        heartbeat stopped, and those awaiting approval whose deadline passed."""

        def is_stalled(task: Task) -> bool:
            if task.status is TaskStatus.AWAITING_APPROVAL:
                # Nothing of it is in flight to re-drive: only its deadline makes it the
                # sweeper's, however long its heartbeat has been still.
                return task.deadline_at < before
            return task.heartbeat_at is not None and task.heartbeat_at < before

        found = [
            t
            for t in self.database.committed.tasks.values()
            if not t.status.is_terminal and not t.is_held and is_stalled(t)
        ]
        # Oldest heartbeat first; Postgres puts a task with none last.
        found.sort(key=lambda t: (t.heartbeat_at is None, t.heartbeat_at or before))
        return [TaskRef(t.tenant_id, t.id, t.priority) for t in found[:limit]]

    def forget_idempotency_keys(self, before: datetime, limit: int) -> int:
        """The StallFinder port: delete keys of any tenant claimed before `before`."""
        keys = self.database.committed.idempotency
        expired = sorted((p.created_at, k) for k, p in keys.items() if p.created_at < before)
        for _, key in expired[:limit]:
            del keys[key]
        return min(len(expired), limit)

    def due_deliveries(self, now: datetime, limit: int) -> list[DeliveryRef]:
        """Pending webhook deliveries of any tenant, due by `now` and not leased."""
        rows = self.database.committed
        found = [
            d
            for d in rows.deliveries.values()
            if d.status is DeliveryStatus.PENDING
            and d.next_attempt_at <= now
            and (d.id not in rows.leases or rows.leases[d.id] < now)
        ]
        found.sort(key=lambda d: d.next_attempt_at)
        return [DeliveryRef(d.tenant_id, d.id) for d in found[:limit]]


class FakeClock:
    def __init__(self, start: datetime = START) -> None:
        self._now = start

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> datetime:
        self._now += timedelta(seconds=seconds)
        return self._now


class FakeTimer:
    """Monotonic seconds that stand still until a test moves them (`now`)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeKeyStore:
    """The KeyStore port in a dict. `finds` counts lookups, to show what a cache saved."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[ApiKey, str]] = {}
        self.finds = 0

    def add(self, key: ApiKey, digest: str) -> None:
        self.rows[key.id] = (key, digest)

    def find(self, key_id: str) -> tuple[ApiKey, str] | None:
        self.finds += 1
        return self.rows.get(key_id)

    def list(self, tenant_id: str | None) -> list[ApiKey]:
        keys = [k for k, _ in self.rows.values() if tenant_id in (None, k.tenant_id)]
        return sorted(keys, key=lambda k: (k.created_at, k.id))

    def revoke(self, key_id: str, tenant_id: str | None, now: datetime) -> ApiKey:
        key, digest = self.rows.get(key_id) or (None, "")
        if key is None or tenant_id not in (None, key.tenant_id):
            raise NotFound("key", key_id)
        if not key.is_revoked:
            key = replace(key, revoked_at=now)
            self.rows[key_id] = (key, digest)
        return key


class FakeBacklog:
    """The Backlog port: `waiting` messages (none unless a test sets it); `reads` counts the
    reads; with `error` set, a read raises it, as Redis away would."""

    def __init__(self, waiting: int = 0) -> None:
        self.waiting, self.reads = waiting, 0
        self.error: Unavailable | None = None

    def depth(self) -> int:
        self.reads += 1
        if self.error is not None:
            raise self.error
        return self.waiting


@dataclass(frozen=True)
class Call:
    """One message the dispatcher was asked to send."""

    name: str  # "coordinate", "run_wave", "review" or "expire"
    ref: TaskRef
    iteration: int | None = None
    wave: int | None = None
    subtasks: tuple[PlannedSubtask, ...] = ()
    at: datetime | None = None


class FakeDispatcher:
    """Records messages in `calls`; `drain` delivers the pending ones as the workers would.

    A wave is delivered as Celery's chord would: each of its steps (`step_deliveries` times, to
    play a redelivery), then its `collect`. An `expire` waits until the clock reaches its time.
    """

    def __init__(
        self,
        *,
        clock: FakeClock | None = None,
        step_deliveries: int = 1,
        on_call: Callable[[Call], None] | None = None,
    ) -> None:
        self.calls: list[Call] = []
        self.pending: deque[Call] = deque()
        self.webhooks: list[tuple[DeliveryRef, float]] = []
        self._clock, self._step_deliveries, self._on_call = clock, step_deliveries, on_call

    def coordinate(self, ref: TaskRef, *, new: bool = False) -> None:
        self._send(Call("coordinate", ref))

    def run_wave(
        self, ref: TaskRef, iteration: int, wave: int, subtasks: Sequence[PlannedSubtask]
    ) -> None:
        self._send(Call("run_wave", ref, iteration, wave, tuple(subtasks)))

    def review(self, ref: TaskRef, iteration: int) -> None:
        self._send(Call("review", ref, iteration))

    def collect(self, ref: TaskRef, iteration: int, wave: int) -> None:
        self._send(Call("collect", ref, iteration, wave))

    def expire(self, ref: TaskRef, at: datetime) -> None:
        self._send(Call("expire", ref, at=at))

    def deliver_webhook(self, ref: DeliveryRef, *, countdown: float = 0.0) -> None:
        self.webhooks.append((ref, countdown))

    def names(self) -> list[str]:
        return [c.name for c in self.calls]

    def lose(self, name: str) -> int:
        """Drop the pending messages of one kind, as a broker that lost them would."""
        lost = [c for c in self.pending if c.name == name]
        self.pending = deque(c for c in self.pending if c.name != name)
        return len(lost)

    def deliver_next(self, coordination: Coordination) -> Call | None:
        """Deliver the first message that is due; None when none is."""
        call = next((c for c in self.pending if self._is_due(c)), None)
        if call is None:
            return None
        self.pending.remove(call)
        task_id = call.ref.task_id
        if call.name == "coordinate":
            coordination.coordinate(task_id)
        elif call.name == "run_wave":
            assert call.iteration is not None and call.wave is not None
            for subtask in call.subtasks:
                queue = subtask.queue or own_queue(subtask.agent_type)
                delivery = Delivery(queue=queue, worker="fake@worker")
                for _ in range(self._step_deliveries):
                    coordination.run_step(task_id, call.iteration, subtask.key, delivery)
            coordination.collect(task_id, call.iteration, call.wave)
        elif call.name == "review":
            assert call.iteration is not None
            coordination.review(task_id, call.iteration)
        elif call.name == "collect":
            assert call.iteration is not None and call.wave is not None
            coordination.collect(task_id, call.iteration, call.wave)
        else:
            coordination.expire(task_id)
        return call

    def drain(self, coordination: Coordination, *, limit: int = 500) -> int:
        """Deliver messages until none is due; answers how many were delivered."""
        for delivered in range(limit):
            if self.deliver_next(coordination) is None:
                return delivered
        raise AssertionError(f"still delivering after {limit} messages: a loop?")

    def _send(self, call: Call) -> None:
        if self._on_call is not None:
            self._on_call(call)
        self.calls.append(call)
        self.pending.append(call)

    def _is_due(self, call: Call) -> bool:
        if call.at is None:
            return True
        return self._clock is not None and self._clock.now() >= call.at


@dataclass(frozen=True)
class ModelCall:
    system: str
    user: str
    chain: tuple[str, ...] | None
    timeout_s: float
    tools: Sequence[dict[str, object]] | None = None


class FakeModelClient:
    """The `ModelClient` port. `script` queues answers (or errors) for prompts that contain a
    given text, in order; any other prompt, or one whose script ran out, gets the offline
    model's answer.
    """

    def __init__(self, *, on_call: Callable[[ModelCall], None] | None = None) -> None:
        self.calls: list[ModelCall] = []
        self._scripts: dict[str, deque[str | MeshError]] = {}
        # Tool calls to ask for ({"name", "arguments"}), one per turn with tools, before
        # the offline model's own choice: what a real model that keeps calling would do.
        self.tool_script: deque[dict[str, object]] = deque()
        self._on_call = on_call

    def script(self, match: str, *answers: str | MeshError) -> None:
        self._scripts.setdefault(match, deque()).extend(answers)

    def calls_with(self, text: str) -> list[ModelCall]:
        return [c for c in self.calls if text in c.system or text in c.user]

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
        if is_wanted is not None and not is_wanted():
            raise CallAbandoned("the fake model was not called: the task has ended")
        system = "\n".join(m.content for m in messages if m.role == "system")
        user = "\n".join(m.content for m in messages if m.role == "user")
        call = ModelCall(system, user, tuple(chain) if chain else None, timeout_s, tools)
        self.calls.append(call)
        if self._on_call is not None:
            self._on_call(call)
        if tools is not None or any(m.role == "tool" for m in messages):
            # With tools, as the offline model: one call of the first tool, then the answer.
            return self._tool_turn(system, user, messages, tools, validate)
        scripted = next(
            (a for m, a in self._scripts.items() if a and (m in system or m in user)), None
        )
        text = scripted.popleft() if scripted else offline_answer(system, user)
        if isinstance(text, MeshError):
            raise text
        if validate is not None:
            # One fake model: an answer it cannot correct leaves the chain with nothing.
            try:
                validate(text)
            except ValueError as exc:
                raise ModelUnavailable(f"no model could answer: invalid answer ({exc})") from exc
        usage = Usage(input_tokens=len(system + user) // 4, output_tokens=len(text) // 4)
        return Completion(text=text, model=FAKE_MODEL, usage=usage, latency_ms=12.5)

    def _tool_turn(
        self,
        system: str,
        user: str,
        messages: Sequence[Message],
        tools: Sequence[dict[str, object]] | None,
        validate: Callable[[str], object] | None,
    ) -> Completion:
        names = {c.id: c.name for m in messages for c in m.tool_calls}
        results = [
            (names.get(m.tool_call_id or "", "tool"), m.content)
            for m in messages
            if m.role == "tool"
        ]
        asked = self.tool_script.popleft() if tools and self.tool_script else None
        text, wanted = offline_respond(system, user, tools, results)
        if asked is not None:
            text, wanted = "", {"id": f"call_{len(self.calls)}", **asked}
        usage = Usage(input_tokens=len(system + user) // 4, output_tokens=len(text) // 4)
        if wanted is not None:
            request = ToolCall(wanted["id"], wanted["name"], wanted["arguments"])
            return Completion("", FAKE_MODEL, usage, 12.5, tool_calls=(request,))
        if validate is not None:
            try:
                validate(text)
            except ValueError as exc:
                raise ModelUnavailable(f"no model could answer: invalid answer ({exc})") from exc
        return Completion(text=text, model=FAKE_MODEL, usage=usage, latency_ms=12.5)


@dataclass
class FakeMesh:
    """One tenant's services over fakes; `for_tenant` gives another tenant the same world."""

    tenant_id: str
    database: FakeDatabase
    uow: FakeUnitOfWorkFactory
    clock: FakeClock
    redis: fakeredis.FakeRedis
    store: RedisMemoryStore
    revisions: RedisTaskRevisions
    models: FakeModelClient
    dispatcher: FakeDispatcher
    networks: NetworkService
    tasks: TaskService
    memory: MemoryService
    learning: MemoryLearning
    ratings: RatingService
    steps: StepRunner
    coordination: Coordination
    backlog: FakeBacklog
    agent_types: AgentTypeService

    @classmethod
    def build(
        cls,
        tenant_id: str = "acme",
        *,
        database: FakeDatabase | None = None,
        clock: FakeClock | None = None,
        redis: fakeredis.FakeRedis | None = None,
        models: FakeModelClient | None = None,
        dispatcher: FakeDispatcher | None = None,
        backlog: FakeBacklog | None = None,
        max_backlog: int = 500,
    ) -> FakeMesh:
        """The services of `tenant_id` as the composition root wires them, on fakes."""
        database = database or FakeDatabase()
        clock = clock or FakeClock()
        redis = redis or fakeredis.FakeRedis(server=fakeredis.FakeServer())
        models = models or FakeModelClient()
        revisions = RedisTaskRevisions(redis)
        adapters = Adapters(
            record=FakeUnitOfWorkFactory(database, announce=revisions.publish),
            memory=RedisMemoryStore(redis, Sealer.from_text(DATA_KEYS)),
            activity=RedisAgentActivity(redis),
            revisions=revisions,
            dispatcher=dispatcher or FakeDispatcher(clock=clock),
            clock=clock,
            backlog=backlog or FakeBacklog(),
            epoch=RedisEpoch(redis),
            webhook_sender=FakeWebhookSender(),
            models=lambda: models,
            tools=lambda: None,
            # On the fake clock: a depth read holds until the test moves the clock on.
            timer=lambda: clock.now().timestamp(),
        )
        services = Mesh(Settings(max_backlog=max_backlog), adapters).tenant(tenant_id)
        return cls(
            tenant_id=tenant_id,
            database=database,
            uow=adapters.record,
            clock=clock,
            redis=redis,
            store=adapters.memory,
            revisions=revisions,
            models=models,
            dispatcher=adapters.dispatcher,
            networks=services.networks,
            tasks=services.tasks,
            memory=services.memory,
            learning=services.learning,
            ratings=services.ratings,
            steps=services.steps,
            coordination=services.coordination,
            backlog=adapters.backlog,
            agent_types=services.agent_types,
        )

    def for_tenant(self, tenant_id: str) -> FakeMesh:
        return FakeMesh.build(
            tenant_id,
            database=self.database,
            clock=self.clock,
            redis=self.redis,
            models=self.models,
            dispatcher=self.dispatcher,
            backlog=self.backlog,
        )

    def drain(self) -> int:
        return self.dispatcher.drain(self.coordination)

    def create_network(self, config: NetworkConfig | None = None) -> Network:
        """A network with the default team."""
        return self.networks.create(
            name="launch team", description="writes launch emails", config=config or NetworkConfig()
        )


@dataclass(frozen=True)
class SentWebhook:
    url: str
    body: str
    headers: dict[str, str]


class FakeWebhookSender:
    """The WebhookSender port: answers each POST with the next scripted status (200 once the
    script runs out) and keeps what was sent; refuses the URLs in `refused`."""

    def __init__(self, *statuses: int, refused: Sequence[str] = ()) -> None:
        self.statuses = deque(statuses)
        self.refused = set(refused)
        self.sent: list[SentWebhook] = []

    def refusal(self, url: str) -> str | None:
        return "resolves to a refused address" if url in self.refused else None

    def send(self, url: str, *, body: str, headers: dict[str, str]) -> Attempt:
        self.sent.append(SentWebhook(url, body, dict(headers)))
        code = self.statuses.popleft() if self.statuses else 200
        return Attempt(code, 12.5, None if code < 300 else f"the receiver answered {code}")
