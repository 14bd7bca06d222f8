"""What the API answers: TypedDicts of its JSON, and the few values the client makes itself.

The TypedDicts describe the JSON as Mesh sends it and are plain dicts at runtime, so a field
a newer Mesh adds is kept, not refused. Times are ISO 8601 strings, ids are strings.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Literal, NotRequired, TypedDict, TypeVar

T = TypeVar("T")

TaskStatus = Literal[
    "queued",
    "planning",
    "awaiting_approval",
    "running",
    "synthesizing",
    "reviewing",
    "completed",
    "failed",
    "cancelled",
    "timed_out",
]
FINAL_STATUSES: frozenset[str] = frozenset({"completed", "failed", "cancelled", "timed_out"})

Priority = Literal["low", "normal", "high"]
MemoryType = Literal["fact", "context", "decision", "feedback"]
# Whose verdict moved an item's confidence: the critic's, a client's rating, a merge.
ConfidenceSource = Literal["critic", "rating", "merge"]
# A name in the tenant's catalog (GET /api/mesh/agent-types): the seven built-in ones are
# coordinator, content, design, analytics, personalization, research and critic.
AgentType = str


class Usage(TypedDict):
    input_tokens: int
    output_tokens: int
    cost_usd: float


class ModelConfig(TypedDict, total=False):
    chain: list[str] | None
    temperature: float
    max_tokens: int


class AgentMetrics(TypedDict):
    calls: int
    failures: int
    mean_latency_ms: float
    input_tokens: int
    output_tokens: int
    cost_usd: float
    in_flight: int


class ToolServer(TypedDict, total=False):
    name: str
    url: str  # streamable HTTP; or
    command: list[str]  # a program the operator allows and its arguments, run over stdio
    tools: list[str]
    idempotent: list[str]
    headers: dict[str, str]  # sent, never shown back
    header_names: list[str]


class AgentTypeDefinition(TypedDict, total=False):
    """A type of the catalog, as sent (name, description, role and what else changes) and as
    answered (with version, builtin, answer_format and created_at)."""

    name: str
    copy_of: str
    description: str
    role: str
    capabilities: list[str]
    reads: list[MemoryType]
    writes: MemoryType
    answer: dict[str, Any] | None
    model: ModelConfig | None
    tools: list[ToolServer]
    max_tool_calls: int | None
    memory_tokens: int | None  # its steps' memory budget (MESH_MEMORY_TOKEN_BUDGET by default)
    queue: str
    version: int
    builtin: bool
    answer_format: str
    created_at: str | None


class Agent(TypedDict):
    id: str
    network_id: str
    name: str
    type: AgentType
    queue: str
    model: ModelConfig
    capabilities: list[str]
    status: str
    metrics: AgentMetrics
    created_at: str


class AgentSpec(TypedDict, total=False):
    """An agent to create: `type` is required."""

    type: AgentType
    name: str
    model: ModelConfig
    capabilities: list[str]


class Budget(TypedDict, total=False):
    tokens: int | None
    cost_usd: float | None


class Approval(TypedDict, total=False):
    """Whether each plan awaits a person's approval (`plan`), and for how long."""

    plan: bool
    timeout_seconds: int


class MemoryPolicy(TypedDict, total=False):
    """How long a network's memory lasts, and how many items it keeps."""

    ttl_seconds: dict[str, int]  # a memory type -> seconds its items last (60 s to 365 days)
    max_items: int | None  # None: the deployment's bound


class Webhook(TypedDict, total=False):
    """Where a network's (or a task's) events are POSTed, signed with its webhook secret."""

    url: str
    events: list[str]  # by default the four endings


class NetworkConfig(TypedDict, total=False):
    max_iterations: int
    timeout_seconds: int
    quality_threshold: float
    model_chain: list[str] | None
    budget: Budget
    approval: Approval
    memory: MemoryPolicy
    webhook: Webhook | None


class Network(TypedDict):
    id: str
    tenant_id: str
    name: str
    description: str
    config: NetworkConfig
    agents: list[Agent]
    usage: Usage
    created_at: str
    updated_at: str


class PlannedSubtask(TypedDict):
    """A subtask of a client's plan: `depends_on` names other keys of the same plan."""

    key: str
    agent: AgentType
    description: str
    depends_on: NotRequired[list[str]]


class Step(TypedDict):
    status: str
    output: str
    model: str | None
    queue: str
    latency_ms: float
    usage: Usage
    memory_read: list[str]
    error: str | None
    worker: str | None
    recorded_at: str


class Subtask(TypedDict):
    key: str
    agent: str
    description: str
    depends_on: list[str]
    iteration: int
    wave: int
    status: str
    step: Step | None


class HistoryEntry(TypedDict):
    seq: int  # the event's number in the task's log (its SSE id), from 1
    at: str
    kind: str
    status: str
    agent: str | None
    queue: str | None
    detail: dict[str, object]


class TaskBrief(TypedDict):
    """A task as lists show it: everything but its subtasks and history."""

    id: str
    network_id: str
    description: str
    context: dict[str, object]
    priority: Priority
    status: TaskStatus
    iteration: int
    # {"answer", "score", "feedback", "contributions"} once there is a result.
    result: dict[str, object] | None
    error: str | None
    usage: Usage
    created_at: str
    updated_at: str
    deadline_at: str
    revision: NotRequired[int]


class Task(TaskBrief):
    """A task with the subtasks of every iteration and its history."""

    subtasks: list[Subtask]
    history: list[HistoryEntry]


class Progress(TypedDict):
    done: int
    planned: int


class TaskSummary(TypedDict):
    """What `view="summary"` answers: enough to follow a task without its whole record."""

    id: str
    network_id: str
    status: TaskStatus
    revision: int
    progress: Progress
    iteration: int
    wave: int | None
    answer: str | None
    score: float | None


class ScoreParts(TypedDict):
    """What a ranked item's score is made of: each part 0 to 1, the type weight aside."""

    relevance: float  # BM25 relevance to `q`, over the best item's
    confidence: float
    recency: float  # 1 new, halving every 7 days of age
    type_weight: float  # the ranking agent type's weight for the item's memory type


class MemoryItem(TypedDict):
    id: str
    network_id: str
    type: MemoryType
    content: str
    confidence: float
    metadata: dict[str, object]
    created_at: str
    contradicts: list[str]  # ids of the network's decisions this one contradicts
    expires_at: str | None  # when its type's time to live ends it; None: it lasts
    promoted_at: str | None  # when it was promoted to last; None if not
    # Only in a ranked list (`q` or `agent`): type_weight x (0.6 relevance + 0.25
    # confidence + 0.15 recency), and those parts.
    score: NotRequired[float]
    score_parts: NotRequired[ScoreParts]


class ConfidenceChange(TypedDict):
    before: float
    after: float
    source: ConfidenceSource
    reason: str
    task_id: str | None  # the task whose verdict it was, if any
    at: str


class ConfidenceHistory(TypedDict):
    """An item's confidence now, and every change that made it, oldest first."""

    item_id: str
    confidence: float
    changes: list[ConfidenceChange]


class Rating(TypedDict):
    """A client's rating of a finished task: one per task, changed by rating it again."""

    task_id: str
    score: int  # 1 (poor) to 5 (excellent)
    comment: str | None
    created_at: str
    updated_at: str


class Provider(TypedDict):
    model: str
    has_credentials: bool
    state: Literal["closed", "open", "half_open"]
    failures_in_window: int
    total_failures: int
    times_opened: int
    probes: int
    next_probe_at: str | None
    last_error: str | None


class ApiKey(TypedDict):
    id: str
    tenant: str
    name: str
    scopes: list[str]
    created_at: str
    revoked_at: str | None


class CreatedKey(TypedDict):
    """A new key: `key` is its secret, which the API shows this once."""

    id: str
    tenant: str
    name: str
    scopes: list[str]
    created_at: str
    key: str


class AuditEvent(TypedDict):
    id: int
    key_id: str | None
    method: str
    route: str | None
    resource_id: str | None
    status: int
    at: str


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list, with where it sits among the others (from `X-Pagination`)."""

    items: list[T]
    total: int | None = None
    total_pages: int | None = None
    page: int | None = None
    first_page: int | None = None
    last_page: int | None = None
    previous_page: int | None = None
    next_page: int | None = None

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    @classmethod
    def of(cls, items: list[T], header: str | None) -> Page[T]:
        """The page of these items, its numbers read from an `X-Pagination` header."""
        try:
            numbers = json.loads(header) if header else {}
        except ValueError:
            numbers = {}
        if not isinstance(numbers, Mapping):
            numbers = {}
        fields = (
            "total",
            "total_pages",
            "page",
            "first_page",
            "last_page",
            "previous_page",
            "next_page",
        )
        # Missing numbers stay None: an empty list's header holds only total and total_pages.
        found = {f: numbers[f] for f in fields if isinstance(numbers.get(f), int)}
        return cls(items, **found)


@dataclass(frozen=True)
class NotModified:
    """A conditional or long-poll read found the task unchanged since the given revision."""

    revision: int | None
    etag: str | None


def revision_of(etag: str | None) -> int | None:
    """The task revision an ETag (`"7"`, or weak `W/"7"`) names; None if it names none."""
    if not etag:
        return None
    text = etag.removeprefix("W/").strip('"')
    return int(text) if text.isdigit() else None


def etag_of(revision: int | str) -> str:
    """The If-None-Match value for a revision, or an ETag given as the API sent it."""
    if isinstance(revision, int):
        return f'"{revision}"'
    if revision.startswith(('"', "W/")):
        return revision
    return f'"{revision}"'
