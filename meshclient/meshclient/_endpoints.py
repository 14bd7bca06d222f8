"""One function per endpoint: the request to send, whether it is safe to repeat, how to read it.

The clients send these `Call`s; neither builds a path, a query or a body itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote
from uuid import UUID

import httpx

from meshclient._bodies import json_of
from meshclient._errors import ApiError, ProtocolError
from meshclient._models import (
    AgentSpec,
    MemoryType,
    ModelConfig,
    NetworkConfig,
    NotModified,
    Page,
    PlannedSubtask,
    Priority,
    etag_of,
    revision_of,
)

T = TypeVar("T")
Id = str | UUID

MAX_WAIT_SECONDS = 60


@dataclass(frozen=True)
class Call(Generic[T]):
    """A request to the API and how to read its success."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    params: Mapping[str, Any] = field(default_factory=dict)
    json: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    # A POST is repeated only when a second one cannot do the work twice: a create carrying
    # an idempotency key, a cancel, process, approve or reject (the second answers 409 at
    # worst), a rating (the same rating again changes nothing) or a promotion (likewise).
    is_retryable: bool = True
    long_poll: float = 0.0
    # The status that, answered to a repeated attempt, means an earlier attempt took effect
    # and only its answer was lost: 404 to a delete, 409 to a cancel or a process.
    settled_by: int | None = None

    def is_settled_by(self, error: ApiError) -> bool:
        """Whether this error says an earlier attempt of the call already did its work."""
        return error.status == self.settled_by and error.attempts > 1


def list_agent_types() -> Call[list[Any]]:
    return Call("GET", "/agent-types", _list)


def get_agent_type(name: str, version: int | None) -> Call[Any]:
    path = _path("agent-types", name)
    return Call("GET", path + (_path("versions", version) if version else ""), _object)


def create_agent_type(definition: Mapping[str, Any]) -> Call[Any]:
    # A name is made once: a repeat that answers 409 found the type an earlier attempt made.
    return Call("POST", "/agent-types", _object, json=dict(definition), settled_by=409)


def change_agent_type(name: str, definition: Mapping[str, Any]) -> Call[Any]:
    return Call("PUT", _path("agent-types", name), _object, json=dict(definition))


def delete_agent_type(name: str) -> Call[None]:
    return Call("DELETE", _path("agent-types", name), _nothing, settled_by=404)


def create_network(
    name: str,
    *,
    description: str | None,
    config: NetworkConfig | None,
    agents: Sequence[AgentSpec] | None,
    idempotency_key: str | None,
) -> Call[Any]:
    body = _body(name=name, description=description, config=config, agents=agents)
    return _create("/networks", body, idempotency_key)


def list_networks(*, page: int | None, page_size: int | None) -> Call[Page[Any]]:
    return Call("GET", "/networks", _page, _query(page=page, page_size=page_size))


def get_network(network_id: Id) -> Call[Any]:
    return Call("GET", _path("networks", network_id), _object)


def delete_network(network_id: Id) -> Call[None]:
    return Call("DELETE", _path("networks", network_id), _nothing, settled_by=404)


def add_agent(
    network_id: Id,
    type: str,
    *,
    name: str | None,
    model: ModelConfig | None,
    capabilities: Sequence[str] | None,
    idempotency_key: str | None,
) -> Call[Any]:
    body = _body(type=type, name=name, model=model, capabilities=capabilities)
    return _create(_path("networks", network_id, "agents"), body, idempotency_key)


def list_agents(network_id: Id, *, page: int | None, page_size: int | None) -> Call[Page[Any]]:
    path = _path("networks", network_id, "agents")
    return Call("GET", path, _page, _query(page=page, page_size=page_size))


def remove_agent(network_id: Id, agent_id: Id) -> Call[None]:
    path = _path("networks", network_id, "agents", agent_id)
    return Call("DELETE", path, _nothing, settled_by=404)


def submit(
    network_id: Id,
    description: str,
    *,
    context: Mapping[str, object] | None,
    priority: Priority | None,
    plan: Sequence[PlannedSubtask] | None,
    auto_process: bool,
    idempotency_key: str | None,
) -> Call[Any]:
    body = _body(
        description=description,
        context=context,
        priority=priority,
        plan=plan,
        auto_process=auto_process,
    )
    return _create(_path("networks", network_id, "tasks"), body, idempotency_key)


def list_tasks(
    network_id: Id, *, status: str | None, page: int | None, page_size: int | None
) -> Call[Page[Any]]:
    query = _query(status=status, page=page, page_size=page_size)
    return Call("GET", _path("networks", network_id, "tasks"), _page, query)


def get_task(
    network_id: Id,
    task_id: Id,
    *,
    view: str | None,
    if_none_match: int | str | None,
    after: int | None,
    wait: float | None,
    until: str | None = None,
) -> Call[Any]:
    if wait is not None:
        if not 0 < wait <= MAX_WAIT_SECONDS:
            raise ValueError(f"wait must be in (0, {MAX_WAIT_SECONDS}] seconds")
        if if_none_match is None and after is None:
            raise ValueError("wait needs if_none_match or after: the revision to wait past")
    headers = {"If-None-Match": etag_of(if_none_match)} if if_none_match is not None else {}
    query = _query(view=view, after=after, wait=_seconds(wait), until=until)
    path = _path("networks", network_id, "tasks", task_id)
    return Call("GET", path, _task_or_not_modified, query, headers=headers, long_poll=wait or 0)


def process(network_id: Id, task_id: Id) -> Call[Any]:
    path = _path("networks", network_id, "tasks", task_id, "process")
    return Call("POST", path, _object, settled_by=409)


def cancel(network_id: Id, task_id: Id) -> Call[Any]:
    path = _path("networks", network_id, "tasks", task_id, "cancel")
    return Call("POST", path, _object, settled_by=409)


def approve(network_id: Id, task_id: Id, plan: Sequence[PlannedSubtask] | None) -> Call[Any]:
    path = _path("networks", network_id, "tasks", task_id, "approve")
    # A retry of an approval that took effect finds the task running: 409.
    return Call("POST", path, _object, json=_body(plan=plan), settled_by=409)


def reject(network_id: Id, task_id: Id, reason: str) -> Call[Any]:
    path = _path("networks", network_id, "tasks", task_id, "reject")
    return Call("POST", path, _object, json={"reason": reason}, settled_by=409)


def rate_task(network_id: Id, task_id: Id, score: int, comment: str | None) -> Call[Any]:
    path = _path("networks", network_id, "tasks", task_id, "rating")
    return Call("POST", path, _object, json=_body(score=score, comment=comment))


def get_rating(network_id: Id, task_id: Id) -> Call[Any]:
    return Call("GET", _path("networks", network_id, "tasks", task_id, "rating"), _object)


def events_path(network_id: Id, task_id: Id) -> str:
    return _path("networks", network_id, "tasks", task_id, "events")


def add_memory(
    network_id: Id,
    type: MemoryType,
    content: str,
    *,
    confidence: float | None,
    metadata: Mapping[str, object] | None,
    idempotency_key: str | None,
) -> Call[Any]:
    body = _body(type=type, content=content, confidence=confidence, metadata=metadata)
    return _create(_path("networks", network_id, "memory"), body, idempotency_key)


def list_memory(
    network_id: Id,
    *,
    type: MemoryType | Sequence[MemoryType] | None,
    min_confidence: float | None,
    task_id: Id | None,
    q: str | None,
    agent: str | None,
    page: int | None,
    page_size: int | None,
) -> Call[Page[Any]]:
    types = [type] if isinstance(type, str) else list(type) if type is not None else None
    query = _query(
        type=types,
        min_confidence=min_confidence,
        task_id=str(task_id) if task_id is not None else None,
        q=q,
        agent=agent,
        page=page,
        page_size=page_size,
    )
    return Call("GET", _path("networks", network_id, "memory"), _page, query)


def memory_history(network_id: Id, item_id: Id) -> Call[Any]:
    return Call("GET", _path("networks", network_id, "memory", item_id, "history"), _object)


def promote_memory(network_id: Id, item_id: Id) -> Call[Any]:
    return Call("POST", _path("networks", network_id, "memory", item_id, "promote"), _object)


def providers() -> Call[list[Any]]:
    return Call("GET", "/providers", _list)


def create_key(*, scopes: Sequence[str], name: str | None) -> Call[Any]:
    # Keys take no idempotency key: a repeated POST could make a second key, so it is sent once.
    body = _body(name=name, scopes=list(scopes))
    return Call("POST", "/keys", _object, json=body, is_retryable=False)


def list_keys(*, page: int | None, page_size: int | None) -> Call[Page[Any]]:
    return Call("GET", "/keys", _page, _query(page=page, page_size=page_size))


def revoke_key(key_id: str) -> Call[None]:
    return Call("DELETE", _path("keys", key_id), _nothing)


def audit(*, before: int | None, page: int | None, page_size: int | None) -> Call[Page[Any]]:
    return Call("GET", "/audit", _page, _query(before=before, page=page, page_size=page_size))


def idempotency_key(given: str | None) -> str:
    """The key a create is sent with: the caller's, checked, or a new random one."""
    if given is None:
        return str(uuid.uuid4())
    if not (1 <= len(given) <= 255 and given.isascii() and given.isprintable()):
        raise ValueError("idempotency_key must be 1 to 255 printable ASCII characters")
    return given


def _create(path: str, body: dict[str, object], key: str | None) -> Call[Any]:
    # The key is fixed here, once: every retry of this call sends the same one.
    headers = {"Idempotency-Key": idempotency_key(key)}
    return Call("POST", path, _object, json=body, headers=headers)


def _path(*segments: object) -> str:
    # Ids are quoted whole: an id holding `/` or `?` must not reach another resource.
    return "".join(f"/{quote(str(segment), safe='')}" for segment in segments)


def _body(**fields: object) -> dict[str, object]:
    """A JSON body without the fields left out: the API applies its defaults to those."""
    return {name: value for name, value in fields.items() if value is not None}


def _query(**params: object) -> dict[str, Any]:
    return {name: value for name, value in params.items() if value is not None}


def _seconds(wait: float | None) -> int | float | None:
    return int(wait) if wait is not None and float(wait).is_integer() else wait


def _object(response: httpx.Response) -> Any:
    body = json_of(response)
    if not isinstance(body, dict):
        raise ProtocolError(f"the API answered {type(body).__name__} where an object was due")
    return body


def _list(response: httpx.Response) -> list[Any]:
    body = json_of(response)
    if not isinstance(body, list):
        raise ProtocolError(f"the API answered {type(body).__name__} where a list was due")
    return body


def _page(response: httpx.Response) -> Page[Any]:
    return Page.of(_list(response), response.headers.get("X-Pagination"))


def _nothing(response: httpx.Response) -> None:
    return None


def _task_or_not_modified(response: httpx.Response) -> Any:
    if response.status_code == 304:
        etag = response.headers.get("ETag")
        return NotModified(revision_of(etag), etag)
    return _object(response)
