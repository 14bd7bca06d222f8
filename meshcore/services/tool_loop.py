"""A specialist's tool calls: the loop that offers a type's MCP tools to its model, and
each call made at most once.

Every call is recorded `started` before it goes out and `done` when it returns, each in a
transaction of its own, keyed by (task, iteration, step, call number). A redelivered step
replays what was recorded; a call a dead worker left `started` is "in doubt" and is made
again only when the tool is idempotent.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import structlog

from meshcore.domain.agent_types import ToolServer
from meshcore.domain.errors import TaskEnded
from meshcore.domain.task import Task, Usage, tool_call_entry
from meshcore.ports import (
    Clock,
    Completion,
    Message,
    ToolCall,
    ToolCallRecord,
    ToolCallStatus,
    ToolClient,
    ToolInfo,
    ToolUnavailable,
    UnitOfWorkFactory,
)

log = structlog.get_logger(__name__)

# The model's turn: the conversation so far, and the tools it may call (None: answer now).
Complete = Callable[[Sequence[Message], list[dict[str, object]] | None], Completion]

# What separates a server's name from its tool's in the names offered to the model: two
# servers may each have a `search`, and the model must be able to say which one it means.
TOOL_SEPARATOR = "__"
MAX_TOOL_DESCRIPTION = 1024


class StepFailed(Exception):
    """A step that cannot go on (its tools cannot be listed, a call is in doubt): it is
    recorded as failed, saying why, with what its model calls had spent."""

    usage: Usage = Usage()
    model: str | None = None


@dataclass(frozen=True)
class OfferedTool:
    server: ToolServer
    info: ToolInfo
    idempotent: bool  # safe to call again when a call's outcome is in doubt

    @property
    def spec(self) -> dict[str, object]:
        """The tool as the model is offered it (an OpenAI function spec)."""
        return {
            "type": "function",
            "function": {
                "name": f"{self.server.name}{TOOL_SEPARATOR}{self.info.name}",
                "description": self.info.description[:MAX_TOOL_DESCRIPTION],
                "parameters": self.info.input_schema or {"type": "object", "properties": {}},
            },
        }


class ToolLoop:
    def __init__(
        self,
        *,
        tenant_id: str,
        uow: UnitOfWorkFactory,
        clock: Clock,
        tools: ToolClient | None,
        max_tool_calls: int = 8,
    ) -> None:
        self._tenant_id, self._uow, self._clock = tenant_id, uow, clock
        self._tools, self._max_tool_calls = tools, max_tool_calls

    def run(
        self,
        task: Task,
        agent_type: str,
        iteration: int,
        key: str,
        messages: Sequence[Message],
        complete: Complete,
        *,
        servers: tuple[ToolServer, ...],
        limit: int | None = None,
    ) -> Completion:
        """Call the model with the type's tools until it answers or `limit` calls were made
        (then once more with none to call, so it answers with what it has). Its usage is
        every model call's; its latency the whole loop's, listings and records included."""
        started, limit = time.perf_counter(), limit or self._max_tool_calls
        offered = self._offer(agent_type, servers)
        specs = [tool.spec for tool in offered.values()]
        conversation = list(messages)
        usage, number = Usage(), 0
        while True:
            can_call = number < limit
            completion = complete(conversation, specs if can_call else None)
            usage = usage + completion.usage
            if not completion.tool_calls or not can_call:
                took_ms = (time.perf_counter() - started) * 1000
                return replace(completion, usage=usage, latency_ms=took_ms, tool_calls=())
            conversation.append(
                Message("assistant", completion.text, tool_calls=completion.tool_calls)
            )
            try:
                for call in completion.tool_calls:
                    number += 1
                    if number > limit:
                        text = f"Error: not called; a step may make at most {limit} tool calls."
                    else:
                        if task.is_past_deadline(self._clock.now()):
                            raise StepFailed(
                                "the task's deadline passed while its tools were called"
                            )
                        text = self._tool_call(
                            task, agent_type, iteration, key, number, call, offered
                        )
                    conversation.append(Message("tool", text, tool_call_id=call.id))
            except StepFailed as failed:
                failed.usage, failed.model = usage, completion.model
                raise

    def _offer(self, agent_type: str, servers: tuple[ToolServer, ...]) -> dict[str, OfferedTool]:
        """The type's tools by the name the model calls them, each server's listing filtered
        by the tools the type allows."""
        if self._tools is None:
            raise StepFailed(
                f"the {agent_type} type calls tools, and this worker has no MCP client"
            )
        offered: dict[str, OfferedTool] = {}
        for server in servers:
            try:
                listed = self._tools.list_tools(server.endpoint, dict(server.headers) or None)
            except ToolUnavailable as exc:
                raise StepFailed(f"the tools of {server.name} could not be listed: {exc}") from exc
            for info in listed:
                if server.tools and info.name not in server.tools:
                    continue
                idempotent = info.idempotent or info.name in server.idempotent
                offered[f"{server.name}{TOOL_SEPARATOR}{info.name}"] = OfferedTool(
                    server, info, idempotent
                )
        return offered

    def _tool_call(
        self,
        task: Task,
        agent_type: str,
        iteration: int,
        key: str,
        number: int,
        call: ToolCall,
        offered: dict[str, OfferedTool],
    ) -> str:
        """Make a step's `number`th tool call at most once; answers what the model reads of
        its result.

        `started` is committed before the call goes out and `done` right after it returns,
        each in a transaction of its own. A redelivered step finds the rows: a `done` one is
        replayed (its result, no call); a `started` one is in doubt (its worker died between
        the two), and is called again only when the tool is idempotent.
        """
        tool = offered.get(call.name)
        if tool is None:
            return f"Error: there is no tool named {call.name!r}."
        arguments = dict(call.arguments)
        record = ToolCallRecord(
            task_id=task.id, iteration=iteration, key=key, number=number,
            server=tool.server.name, tool=tool.info.name, arguments_hash=_hash(arguments),
            arguments=arguments, status=ToolCallStatus.STARTED, started_at=self._clock.now(),
        )  # fmt: skip
        with self._uow(self._tenant_id) as uow:
            stored, is_new = uow.tool_calls.start(record)
            uow.commit()
        if not is_new:
            # Keyed by the call's number, not by what was asked: a real model may ask for
            # other calls (or other arguments) on a replay than it did the first time. The
            # recorded call is the one that happened, so it is the one that counts: its
            # result is fed back (or, in doubt, it is the call repeated or refused), whatever
            # the model asks now.
            if (stored.tool, stored.arguments_hash) != (record.tool, record.arguments_hash):
                log.warning(
                    "step.tool_call_differs", task_id=str(task.id), subtask=key, number=number,
                    recorded=stored.tool, asked=record.tool,
                )  # fmt: skip
                tool = offered.get(f"{stored.server}{TOOL_SEPARATOR}{stored.tool}", tool)
            record = stored
            if stored.status is not ToolCallStatus.STARTED:
                self._note(task, agent_type, record, outcome="replayed", latency_ms=0.0)
                return _tool_text(stored.result or "", stored.is_error)
            if not tool.idempotent:
                self._note(task, agent_type, record, outcome="in_doubt", latency_ms=0.0)
                raise StepFailed(_in_doubt(stored.tool))
            log.info("step.tool_call_repeated", task_id=str(task.id), subtask=key, number=number)
        repeated = not is_new  # a call in doubt, of an idempotent tool: made again
        log.info(
            "step.tool_call", task_id=str(task.id), subtask=key, number=number,
            server=record.server, tool=record.tool,
        )  # fmt: skip
        assert self._tools is not None  # _offer checked
        started = time.perf_counter()
        try:
            result = self._tools.call_tool(
                tool.server.endpoint,
                record.tool,
                record.arguments,
                dict(tool.server.headers) or None,
            )
        except ToolUnavailable as exc:
            took_ms = (time.perf_counter() - started) * 1000
            if exc.may_have_run and not tool.idempotent:
                # The row stays `started`: a redelivery finds it in doubt too.
                self._note(
                    task, agent_type, record, outcome="in_doubt", latency_ms=took_ms,
                    repeated=repeated,
                )  # fmt: skip
                raise StepFailed(_in_doubt(record.tool)) from exc
            self._finish(record, ToolCallStatus.FAILED, str(exc), is_error=True, took_ms=took_ms)
            self._note(
                task, agent_type, record, outcome="error", latency_ms=took_ms, repeated=repeated
            )
            return _tool_text(str(exc), True)
        self._finish(
            record, ToolCallStatus.DONE, result.text, is_error=result.is_error,
            took_ms=result.latency_ms,
        )  # fmt: skip
        outcome = "error" if result.is_error else "ok"
        self._note(
            task, agent_type, record, outcome=outcome, latency_ms=result.latency_ms,
            repeated=repeated,
        )  # fmt: skip
        return _tool_text(result.text, result.is_error)

    def _finish(
        self,
        record: ToolCallRecord,
        status: ToolCallStatus,
        text: str,
        *,
        is_error: bool,
        took_ms: float,
    ) -> None:
        now = self._clock.now()
        with self._uow(self._tenant_id) as uow:
            uow.tool_calls.finish(
                record, status=status, result=text, is_error=is_error, latency_ms=took_ms,
                now=now,
            )  # fmt: skip
            # Calls can outlast the step's lease: each one that returns renews it, or the
            # sweeper would start the step again beside this attempt, and that attempt would
            # find this one's next call in doubt.
            uow.steps.renew_lease(record.task_id, record.iteration, record.key, now=now)
            uow.commit()

    def _note(
        self, task: Task, agent_type: str, record: ToolCallRecord, *, outcome: str,
        latency_ms: float, repeated: bool = False,
    ) -> None:  # fmt: skip
        """The call's event in the task's history (none once the task has ended)."""
        now = self._clock.now()
        entry = tool_call_entry(
            iteration=record.iteration, key=record.key, agent_type=agent_type,
            server=record.server, tool=record.tool,
            arguments=json.dumps(record.arguments, sort_keys=True), outcome=outcome,
            latency_ms=latency_ms, now=now, repeated=repeated,
        )  # fmt: skip
        try:
            with self._uow(self._tenant_id) as uow:
                uow.tasks.begin_step(entry, task.id, now=now)
                uow.commit()
        except TaskEnded:
            pass


def _hash(arguments: dict[str, Any]) -> str:
    canonical = json.dumps(arguments, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _tool_text(text: str, is_error: bool) -> str:
    """What the model reads of a tool's result."""
    return f"Error: {text}" if is_error else text


def _in_doubt(tool: str) -> str:
    return (
        f"the call to {tool} may have run (an earlier attempt stopped before its result was "
        f"recorded), and {tool} is not idempotent, so Mesh will not repeat it"
    )
