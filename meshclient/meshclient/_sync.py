"""`Mesh`, the blocking client: each method sends one request, retried when that is safe."""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Literal, TypeVar, overload

import httpx

from meshclient import _endpoints as endpoints
from meshclient._endpoints import Call, Id
from meshclient._errors import ApiError
from meshclient._events import Event, EventStream
from meshclient._models import (
    FINAL_STATUSES,
    Agent,
    AgentSpec,
    AgentType,
    AgentTypeDefinition,
    ApiKey,
    AuditEvent,
    ConfidenceHistory,
    CreatedKey,
    MemoryItem,
    MemoryType,
    ModelConfig,
    Network,
    NetworkConfig,
    NotModified,
    Page,
    PlannedSubtask,
    Priority,
    Provider,
    Rating,
    Task,
    TaskBrief,
    TaskSummary,
)
from meshclient._transport import Connection, is_transient
from meshclient._waiting import Deadline

T = TypeVar("T")


class Mesh:
    """A client of Mesh's REST API. Use it as a context manager, or call `close()`."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 30.0,
        retries: int = 3,
        transport: httpx.BaseTransport | None = None,
        verify: bool | str | ssl.SSLContext = True,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._connection = Connection.of(base_url, api_key, timeout=timeout, retries=retries)
        options = self._connection.client_options(verify=verify, transport=transport)
        self._http = httpx.Client(**options)
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"Mesh({self._connection.root!r})"

    def __enter__(self) -> Mesh:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections this client holds."""
        self._http.close()

    def create_network(
        self,
        name: str,
        *,
        description: str | None = None,
        config: NetworkConfig | None = None,
        agents: Sequence[AgentSpec] | None = None,
        idempotency_key: str | None = None,
    ) -> Network:
        """Create a network; without `agents` it gets the default team of seven."""
        return self._send(
            endpoints.create_network(
                name,
                description=description,
                config=config,
                agents=agents,
                idempotency_key=idempotency_key,
            )
        )

    def list_networks(
        self, *, page: int | None = None, page_size: int | None = None
    ) -> Page[Network]:
        """One page of the tenant's networks, newest first."""
        return self._send(endpoints.list_networks(page=page, page_size=page_size))

    def list_agent_types(self) -> list[AgentTypeDefinition]:
        """The tenant's catalog: the seven built-in types and its own, by name."""
        return self._send(endpoints.list_agent_types())

    def get_agent_type(self, name: str, version: int | None = None) -> AgentTypeDefinition:
        """A type's current version, or the `version` a step recorded."""
        return self._send(endpoints.get_agent_type(name, version))

    def create_agent_type(self, definition: AgentTypeDefinition) -> AgentTypeDefinition:
        """Add a type (its name, description and role at least; `copy_of` copies another)."""
        made = self._send_settled(endpoints.create_agent_type(definition))
        return made if made is not None else self.get_agent_type(definition["name"])

    def change_agent_type(
        self, name: str, definition: AgentTypeDefinition
    ) -> AgentTypeDefinition:
        """A new version of a type (all of it: what is left out takes its default)."""
        return self._send(endpoints.change_agent_type(name, definition))

    def delete_agent_type(self, name: str) -> None:
        """Delete a type no network uses (Conflict naming the networks that do)."""
        self._send_settled(endpoints.delete_agent_type(name))

    def get_network(self, network_id: Id) -> Network:
        """A network with its agents and usage."""
        return self._send(endpoints.get_network(network_id))

    def delete_network(self, network_id: Id) -> None:
        """Delete a network with its agents, tasks and memory."""
        self._send_settled(endpoints.delete_network(network_id))

    def add_agent(
        self,
        network_id: Id,
        type: AgentType,
        *,
        name: str | None = None,
        model: ModelConfig | None = None,
        capabilities: Sequence[str] | None = None,
        idempotency_key: str | None = None,
    ) -> Agent:
        """Add an agent of a type to a network."""
        return self._send(
            endpoints.add_agent(
                network_id,
                type,
                name=name,
                model=model,
                capabilities=capabilities,
                idempotency_key=idempotency_key,
            )
        )

    def list_agents(
        self, network_id: Id, *, page: int | None = None, page_size: int | None = None
    ) -> Page[Agent]:
        """One page of a network's agents, in the order they were added."""
        return self._send(endpoints.list_agents(network_id, page=page, page_size=page_size))

    def remove_agent(self, network_id: Id, agent_id: Id) -> None:
        """Remove an agent (not the network's last coordinator or critic: Conflict)."""
        self._send_settled(endpoints.remove_agent(network_id, agent_id))

    def submit(
        self,
        network_id: Id,
        description: str,
        *,
        context: Mapping[str, object] | None = None,
        priority: Priority | None = None,
        plan: Sequence[PlannedSubtask] | None = None,
        auto_process: bool = True,
        idempotency_key: str | None = None,
        wait: bool = False,
        timeout: float | None = None,
    ) -> Task:
        """Submit a task; with `wait`, the task once it has ended (WaitTimeout after `timeout`)."""
        task: Task = self._send(
            endpoints.submit(
                network_id,
                description,
                context=context,
                priority=priority,
                plan=plan,
                auto_process=auto_process,
                idempotency_key=idempotency_key,
            )
        )
        if not wait:
            return task
        return self.wait_for(network_id, task["id"], timeout=timeout)

    def list_tasks(
        self,
        network_id: Id,
        *,
        status: str | None = None,
        page: int | None = None,
        page_size: int | None = None,
    ) -> Page[TaskBrief]:
        """One page of a network's tasks, newest first, without subtasks or history."""
        call = endpoints.list_tasks(network_id, status=status, page=page, page_size=page_size)
        return self._send(call)

    @overload
    def get_task(
        self,
        network_id: Id,
        task_id: Id,
        *,
        view: None = None,
        if_none_match: None = None,
        after: None = None,
        wait: None = None,
    ) -> Task: ...
    @overload
    def get_task(
        self,
        network_id: Id,
        task_id: Id,
        *,
        view: Literal["summary"],
        if_none_match: None = None,
        after: None = None,
        wait: None = None,
    ) -> TaskSummary: ...
    @overload
    def get_task(
        self,
        network_id: Id,
        task_id: Id,
        *,
        view: None = None,
        if_none_match: int | str | None = None,
        after: int | None = None,
        wait: float | None = None,
    ) -> Task | NotModified: ...
    @overload
    def get_task(
        self,
        network_id: Id,
        task_id: Id,
        *,
        view: Literal["summary"],
        if_none_match: int | str | None = None,
        after: int | None = None,
        wait: float | None = None,
    ) -> TaskSummary | NotModified: ...
    def get_task(
        self,
        network_id: Id,
        task_id: Id,
        *,
        view: Literal["summary"] | None = None,
        if_none_match: int | str | None = None,
        after: int | None = None,
        wait: float | None = None,
    ) -> Task | TaskSummary | NotModified:
        """A task; NotModified when unchanged since `if_none_match` or `after` (a revision)."""
        call = endpoints.get_task(
            network_id, task_id, view=view, if_none_match=if_none_match, after=after, wait=wait
        )
        return self._send(call)

    def wait_for(self, network_id: Id, task_id: Id, *, timeout: float | None = None) -> Task:
        """The task once it has ended, long-polling its summary; WaitTimeout after `timeout`."""
        deadline = Deadline(timeout)
        summary = self.get_task(network_id, task_id, view="summary")
        while summary["status"] not in FINAL_STATUSES:
            seconds = deadline.next_poll(str(task_id), summary["status"])
            # until=ended: one answer when the task ends, not one per step it records.
            call = endpoints.get_task(
                network_id,
                task_id,
                view="summary",
                if_none_match=summary["revision"],
                after=None,
                wait=seconds,
                until="ended",
            )
            answer = self._send(call)
            if not isinstance(answer, NotModified):
                summary = answer
        return self.get_task(network_id, task_id)

    def process(self, network_id: Id, task_id: Id) -> Task:
        """Start a task submitted with `auto_process=False`."""
        task = self._send_settled(endpoints.process(network_id, task_id))
        return task if task is not None else self.get_task(network_id, task_id)

    def cancel(self, network_id: Id, task_id: Id) -> Task:
        """Cancel a task that has not ended (Conflict if it has); the task after."""
        task = self._send_settled(endpoints.cancel(network_id, task_id))
        return task if task is not None else self.get_task(network_id, task_id)

    def approve(
        self, network_id: Id, task_id: Id, plan: Sequence[PlannedSubtask] | None = None
    ) -> Task:
        """Approve the plan a task awaits approval of, or `plan` in its place (Unprocessable
        if the network cannot run it); Conflict unless it awaits approval. The task after."""
        task = self._send_settled(endpoints.approve(network_id, task_id, plan))
        return task if task is not None else self.get_task(network_id, task_id)

    def reject(self, network_id: Id, task_id: Id, reason: str) -> Task:
        """Reject the plan a task awaits approval of: it ends cancelled, saying why; Conflict
        unless it awaits approval. The task after."""
        task = self._send_settled(endpoints.reject(network_id, task_id, reason))
        return task if task is not None else self.get_task(network_id, task_id)

    def rate_task(
        self, network_id: Id, task_id: Id, score: int, comment: str | None = None
    ) -> Rating:
        """Rate a finished task from 1 to 5, or change its rating (a new comment, or none, in
        place of the old); Conflict unless the task has ended. The rating after."""
        return self._send(endpoints.rate_task(network_id, task_id, score, comment))

    def get_rating(self, network_id: Id, task_id: Id) -> Rating:
        """The task's rating; NotFound if it has none."""
        return self._send(endpoints.get_rating(network_id, task_id))

    def events(
        self, network_id: Id, task_id: Id, *, last_event_id: int | None = None
    ) -> Iterator[Event]:
        """The task's events after `last_event_id`, resuming dropped connections, to its end."""
        path = endpoints.events_path(network_id, task_id)
        stream = EventStream(self._connection, path, last_id=last_event_id)
        while True:
            try:
                with self._http.stream(
                    "GET", stream.path, headers=stream.headers(), timeout=stream.timeout()
                ) as response:
                    if response.status_code != 200:
                        response.read()
                        delay = stream.refused(response)
                    else:
                        stream.connected(response.headers.get("content-type", ""))
                        for line in response.iter_lines():
                            event = stream.feed(line)
                            if event is not None:
                                yield event
                                if event.is_final:
                                    return
                        if not stream.has_news and stream.is_caught_up(
                            self.get_task(network_id, task_id, view="summary")
                        ):
                            return  # the task had ended at or before `last_event_id`
                        delay = stream.dropped(ConnectionError("closed before the task ended"))
            except httpx.TransportError as exc:
                delay = stream.dropped(exc)
            self._sleep(delay)

    def add_memory(
        self,
        network_id: Id,
        type: MemoryType,
        content: str,
        *,
        confidence: float | None = None,
        metadata: Mapping[str, object] | None = None,
        idempotency_key: str | None = None,
    ) -> MemoryItem:
        """Add an item to a network's shared memory."""
        return self._send(
            endpoints.add_memory(
                network_id,
                type,
                content,
                confidence=confidence,
                metadata=metadata,
                idempotency_key=idempotency_key,
            )
        )

    def list_memory(
        self,
        network_id: Id,
        *,
        type: MemoryType | Sequence[MemoryType] | None = None,
        min_confidence: float | None = None,
        task_id: Id | None = None,
        q: str | None = None,
        agent: str | None = None,
        page: int | None = None,
        page_size: int | None = None,
    ) -> Page[MemoryItem]:
        """One page of a network's memory items, newest first; with `q` (text) or `agent`
        (an agent type, whose weights rank), best first instead, each with its `score` and
        `score_parts`."""
        call = endpoints.list_memory(
            network_id,
            type=type,
            min_confidence=min_confidence,
            task_id=task_id,
            q=q,
            agent=agent,
            page=page,
            page_size=page_size,
        )
        return self._send(call)

    def memory_history(self, network_id: Id, item_id: Id) -> ConfidenceHistory:
        """An item's confidence and every change to it, oldest first, each with its source
        and reason; NotFound for an item the network lacks."""
        return self._send(endpoints.memory_history(network_id, item_id))

    def promote_memory(self, network_id: Id, item_id: Id) -> MemoryItem:
        """Make an item last: its expiry cleared and, a context item, kept past its task.
        Promoting it again changes nothing. The item after, with `promoted_at`."""
        return self._send(endpoints.promote_memory(network_id, item_id))

    def providers(self) -> list[Provider]:
        """Each model of the chain with its circuit breaker."""
        return self._send(endpoints.providers())

    def create_key(self, *, scopes: Sequence[str], name: str | None = None) -> CreatedKey:
        """(admin) A new key of the caller's tenant; its secret is in the answer only."""
        return self._send(endpoints.create_key(scopes=scopes, name=name))

    def list_keys(self, *, page: int | None = None, page_size: int | None = None) -> Page[ApiKey]:
        """(admin) One page of the tenant's keys, oldest first, revoked ones too."""
        return self._send(endpoints.list_keys(page=page, page_size=page_size))

    def revoke_key(self, key_id: str) -> None:
        """(admin) Revoke a key; revoking twice is a no-op."""
        self._send(endpoints.revoke_key(key_id))

    def audit(
        self, *, before: int | None = None, page: int | None = None, page_size: int | None = None
    ) -> Page[AuditEvent]:
        """(admin) One page of the tenant's audit trail, newest first."""
        return self._send(endpoints.audit(before=before, page=page, page_size=page_size))

    def _send(self, call: Call[T]) -> T:
        retry, attempt = self._connection.retry, 0
        while True:
            attempt += 1
            try:
                response = self._http.request(
                    call.method,
                    call.path,
                    params=call.params,
                    json=call.json,
                    headers=call.headers,
                    timeout=self._connection.timeout_for(call),
                )
            except httpx.TransportError as exc:
                delay = retry.after_failure(
                    attempt=attempt, is_retryable=call.is_retryable and is_transient(exc)
                )
                if delay is None:
                    raise self._connection.unreachable(
                        call.method, call.path, exc, attempts=attempt
                    ) from exc
            else:
                delay = retry.after_response(
                    response.status_code,
                    response.headers,
                    attempt=attempt,
                    is_retryable=call.is_retryable,
                )
                if delay is None:
                    return self._connection.read(call, response, attempts=attempt)
            self._sleep(delay)

    def _send_settled(self, call: Call[T]) -> T | None:
        """The call's value, or None when a retry found an earlier attempt had done its work."""
        try:
            return self._send(call)
        except ApiError as exc:
            if call.is_settled_by(exc):
                return None
            raise
