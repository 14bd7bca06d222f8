"""Running one step of one agent: build its prompt, call its model chain, record the result.

A step is keyed by (task, iteration, key). The step log in Postgres keeps the first result
recorded under a key; a redelivered step finds it and never calls the model again.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any
from uuid import UUID

import structlog

from meshcore.agents import BUILTINS, AgentProfile, profile_for
from meshcore.agents.answer_schema import read_answer
from meshcore.domain.agent_types import ToolServer, own_queue
from meshcore.domain.errors import ModelUnavailable, NotFound, TaskEnded, Unavailable
from meshcore.domain.memory import MemoryItem, MemoryQuery
from meshcore.domain.network import Network
from meshcore.domain.task import (
    StepRecord,
    StepStatus,
    Task,
    TaskStatus,
    Usage,
    step_start_entry,
    tool_call_entry,
)
from meshcore.ports import (
    AgentActivity,
    Clock,
    Completion,
    Delivery,
    MemoryStore,
    Message,
    ModelClient,
    TaskRevisions,
    ToolCall,
    ToolCallRecord,
    ToolCallStatus,
    ToolClient,
    ToolInfo,
    ToolUnavailable,
    UnitOfWorkFactory,
)
from meshcore.services.agent_types import definition_at
from meshcore.services.memory import MemoryView
from meshcore.telemetry import metrics
from meshcore.telemetry.tracing import current_traceparent, tracer

log = structlog.get_logger(__name__)

NOWHERE = Delivery()
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


class StepRunner:
    def __init__(
        self,
        *,
        tenant_id: str,
        uow: UnitOfWorkFactory,
        memory: MemoryStore,
        activity: AgentActivity,
        models: ModelClient,
        clock: Clock,
        memory_limit: int = 20,
        memory_min_confidence: float = 0.5,
        lease_seconds: float = 90.0,
        max_attempts: int = 5,
        revisions: TaskRevisions | None = None,
        tools: ToolClient | None = None,
        max_tool_calls: int = 8,
    ) -> None:
        self._tenant_id, self._uow = tenant_id, uow
        self._memory = MemoryView(tenant_id=tenant_id, uow=uow, store=memory)
        self._activity, self._models, self._clock = activity, models, clock
        self._memory_limit, self._min_confidence = memory_limit, memory_min_confidence
        self._lease_seconds, self._max_attempts = lease_seconds, max_attempts
        self._revisions = revisions
        self._tools, self._max_tool_calls = tools, max_tool_calls

    def run_subtask(
        self, task_id: UUID, iteration: int, key: str, delivery: Delivery = NOWHERE
    ) -> StepRecord | None:
        """Run a specialist's subtask once; a replay returns the recorded step."""
        with tracer.start_as_current_span(
            "mesh.agent_step",
            attributes={"mesh.task_id": str(task_id), "mesh.iteration": iteration,
                        "mesh.subtask": key},
        ) as span:
            step = self._run_subtask(task_id, iteration, key, delivery)
            if step is not None:
                span.set_attribute("mesh.agent", str(step.agent_type))
                span.set_attribute("mesh.step_status", step.status.value)
            return step

    def _run_subtask(
        self, task_id: UUID, iteration: int, key: str, delivery: Delivery
    ) -> StepRecord | None:
        with self._uow(self._tenant_id) as uow:
            subtask = uow.tasks.subtask(task_id, iteration, key)
            if subtask is None:
                raise NotFound("subtask", f"{task_id}/{iteration}/{key}")
            if subtask.step is not None:
                log.info("step.replayed", task_id=str(task_id), iteration=iteration, subtask=key)
                return subtask.step
            task = uow.tasks.get(task_id)
            bind_log_context(task)
            if task.status.is_terminal or task.is_past_deadline(self._clock.now()):
                return None
            network = uow.networks.get(task.network_id)
            planned = subtask.planned
            definition = definition_at(uow, planned.agent_type, planned.agent_version)
        profile = profile_for(definition)
        dependencies = self._memory.for_subtasks(network.id, task_id, planned.depends_on)
        dependencies = [m for m in dependencies if m.metadata.get("iteration") == iteration]
        seen = {m.id for m in dependencies}
        memory = [
            m
            for m in self._memory.query(
                network.id, MemoryQuery(profile.reads, self._min_confidence, self._memory_limit)
            )
            if m.id not in seen
        ]
        messages = profile.step_messages(
            task=task.description,
            context=task.context,
            subtask=planned.description,
            dependencies=dependencies,
            memory=memory,
        )
        schema = definition.answer
        step = self.call(
            task,
            network,
            planned.agent_type,
            iteration,
            key,
            messages,
            memory_read=tuple(str(m.id) for m in [*dependencies, *memory]),
            delivery=delivery,
            validate=(lambda text: read_answer(schema, text)) if schema is not None else None,
            queue=planned.queue or definition.queue,
            agent_version=planned.agent_version,
            tool_servers=definition.tools,
            max_tool_calls=definition.max_tool_calls,
        )
        if step is None:
            return None
        return self.record(step, network.id, self.memory_item(task, network, step, profile))

    def call(
        self,
        task: Task,
        network: Network,
        agent_type: str,
        iteration: int,
        key: str,
        messages: Sequence[Message],
        *,
        memory_read: tuple[str, ...] = (),
        delivery: Delivery = NOWHERE,
        validate: Callable[[str], object] | None = None,
        queue: str | None = None,
        agent_version: int = 1,
        tool_servers: tuple[ToolServer, ...] = (),
        max_tool_calls: int | None = None,
    ) -> StepRecord | None:
        """Call the agent's model chain; a chain that cannot answer yields a failed step,
        and so does a call the network's budget cannot pay for (without calling). None: the
        step is leased by another attempt that is still running."""
        agent = network.agent_of(agent_type)
        base = dict(
            task_id=task.id,
            iteration=iteration,
            key=key,
            agent_type=agent_type,
            agent_version=agent_version,
            queue=delivery.queue or queue or own_queue(agent_type),
            worker=delivery.worker,
            memory_read=memory_read,
            traceparent=current_traceparent(),
        )
        if agent is None:
            return StepRecord(
                **base,
                status=StepStatus.FAILED,
                output="",
                recorded_at=self._clock.now(),
                error=f"the network has no enabled {agent_type} agent",
            )
        estimate = sum(len(m.content) for m in messages) // 4 + agent.model.max_tokens
        refusal = network.config.budget.refusal(task.usage, estimate)
        if refusal is not None:
            log.warning("step.over_budget", task_id=str(task.id), subtask=key, reason=refusal)
            return StepRecord(
                **base,
                status=StepStatus.FAILED,
                output="",
                recorded_at=self._clock.now(),
                error=refusal,
            )
        attempt = self._begin(task, iteration, key, agent_type, base["queue"])
        if attempt is None:
            log.info(
                "step.leased_elsewhere", task_id=str(task.id), iteration=iteration, subtask=key
            )
            return None
        if attempt > self._max_attempts:
            # Each earlier attempt died with its worker (or kept timing out): a poison step.
            return StepRecord(
                **base,
                status=StepStatus.FAILED,
                output="",
                recorded_at=self._clock.now(),
                attempt=attempt,
                error=f"gave up after {attempt - 1} attempts that never finished",
            )
        base["attempt"] = attempt
        metrics.subtasks.labels(metric_label(agent_type), base["queue"], "started").inc()
        if attempt > 1:
            metrics.subtasks.labels(metric_label(agent_type), base["queue"], "retried").inc()
        # One line per model call, so an audit can show no recorded step was called again.
        log.info(
            "step.model_call",
            task_id=str(task.id),
            iteration=iteration,
            subtask=key,
            attempt=attempt,
        )
        started = time.perf_counter()
        lease = f"{task.id}/{iteration}/{key}/{attempt}"
        now = self._clock.now()
        self._activity.began(
            self._tenant_id, agent.id, lease, now=now,
            until=now + timedelta(seconds=self._lease_seconds),
        )  # fmt: skip

        def complete(
            conversation: Sequence[Message], tools: list[dict[str, object]] | None = None
        ) -> Completion:
            return self._models.complete(
                conversation,
                chain=agent.model.chain or network.config.model_chain,
                temperature=agent.model.temperature,
                max_tokens=agent.model.max_tokens,
                timeout_s=max(1.0, task.seconds_left(self._clock.now())),
                validate=validate,
                is_wanted=lambda: self._is_unfinished(task),
                **({"tools": tools} if tools else {}),
            )

        try:
            if tool_servers:
                completion = self._with_tools(
                    task, agent_type, iteration, key, messages, complete,
                    servers=tool_servers, limit=max_tool_calls or self._max_tool_calls,
                )  # fmt: skip
            else:
                completion = complete(messages)
        except StepFailed as exc:
            log.warning("step.tools_failed", task_id=str(task.id), subtask=key, error=str(exc))
            return StepRecord(
                **base,
                status=StepStatus.FAILED,
                output="",
                recorded_at=self._clock.now(),
                error=str(exc),
                model=exc.model,
                usage=exc.usage,
                latency_ms=(time.perf_counter() - started) * 1000,
            )
        except ModelUnavailable as exc:
            log.warning("step.model_unavailable", task_id=str(task.id), subtask=key, error=str(exc))
            return StepRecord(
                **base,
                status=StepStatus.FAILED,
                output="",
                recorded_at=self._clock.now(),
                error=str(exc),
                latency_ms=(time.perf_counter() - started) * 1000,
            )
        finally:
            self._activity.ended(self._tenant_id, agent.id, lease)
        return StepRecord(
            **base,
            status=StepStatus.COMPLETED,
            output=completion.text,
            recorded_at=self._clock.now(),
            model=completion.model,
            usage=completion.usage,
            latency_ms=completion.latency_ms,
        )

    def _with_tools(
        self,
        task: Task,
        agent_type: str,
        iteration: int,
        key: str,
        messages: Sequence[Message],
        complete: Callable[[Sequence[Message], list[dict[str, object]] | None], Completion],
        *,
        servers: tuple[ToolServer, ...],
        limit: int,
    ) -> Completion:
        """Call the model with the type's tools until it answers or `limit` calls were made
        (then once more with none to call, so it answers with what it has). Its usage is
        every model call's; its latency the whole loop's, listings and records included."""
        started = time.perf_counter()
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
                listed = self._tools.list_tools(server.url)
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
            result = self._tools.call_tool(tool.server.url, record.tool, record.arguments)
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
        with self._uow(self._tenant_id) as uow:
            uow.tool_calls.finish(
                record, status=status, result=text, is_error=is_error, latency_ms=took_ms,
                now=self._clock.now(),
            )  # fmt: skip
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

    def _is_unfinished(self, task: Task) -> bool:
        """Whether the task still wants this step's model call: its status in Redis, where
        a cancel is announced as it commits (when Redis does not answer, it is wanted)."""
        if self._revisions is None:
            return True
        try:
            found = self._revisions.current(self._tenant_id, task.network_id, task.id)
        except Unavailable:
            return True
        return found is None or not found.status.is_terminal

    def record(
        self, step: StepRecord, network_id: UUID, item: MemoryItem | None = None
    ) -> StepRecord:
        """Record a step (first write wins); the winner's usage, history and memory go with it.

        A step that finishes after its task ended (cancelled while the model answered) is
        discarded whole, and returned as it came: the task's result takes no more work.
        """
        try:
            with self._uow(self._tenant_id) as uow:
                stored, is_new = uow.steps.record(step)
                if is_new:
                    if item is not None:
                        uow.memory.add(item)
                    # Last, the two rows other transactions update too: the task's (its other
                    # steps) and the agent's (every task's steps of its type) stay locked for
                    # the fewest statements, and are always locked in this order.
                    uow.tasks.add_step(step, now=self._clock.now())
                    # A step made a model call if it names a model or spent time failing in
                    # the chain; a client's plan, a budget refusal or a missing agent made none.
                    if step.model is not None or step.latency_ms > 0:
                        uow.agents.record_call(
                            network_id,
                            step.agent_type,
                            latency_ms=step.latency_ms,
                            usage=step.usage,
                            is_failure=step.status is StepStatus.FAILED,
                        )
                uow.commit()
        except TaskEnded as exc:
            log.info(
                "step.discarded",
                task_id=str(step.task_id),
                iteration=step.iteration,
                subtask=step.key,
                task_status=str(exc.status),
            )
            return step
        if is_new:
            _count_recorded(step)
        if is_new and item is not None:
            self._memory.publish(item)
        log.info(
            "step.recorded" if is_new else "step.duplicate_discarded",
            task_id=str(step.task_id),
            iteration=step.iteration,
            subtask=step.key,
            agent=str(step.agent_type),
            queue=step.queue,
            status=stored.status.value,
        )
        return stored

    def memory_item(
        self, task: Task, network: Network, step: StepRecord, profile: AgentProfile
    ) -> MemoryItem | None:
        """What a completed step writes to shared memory, typed by its agent's profile."""
        if step.status is not StepStatus.COMPLETED:
            return None
        agent = network.agent_of(step.agent_type)
        return MemoryItem.create(
            tenant_id=self._tenant_id,
            network_id=network.id,
            type=profile.writes,
            content=step.output[:20_000],
            confidence=profile.confidence,
            now=self._clock.now(),
            metadata={
                "source_agent": str(step.agent_type),
                "agent_id": str(agent.id) if agent else None,
                "task_id": str(task.id),
                "subtask": step.key,
                "iteration": step.iteration,
            },
        )

    def _begin(
        self, task: Task, iteration: int, key: str, agent_type: str, queue: str
    ) -> int | None:
        """Lease the step, count the attempt and note its start in the task's log, in one
        transaction; None if another attempt holds the lease or the task has ended.

        The start takes the task's row lock, as a cancel does: once a cancel has committed,
        no step begins a model call.
        """
        now = self._clock.now()
        try:
            with self._uow(self._tenant_id) as uow:
                attempt = uow.steps.begin_attempt(
                    task.id, iteration, key, now=now, lease_seconds=self._lease_seconds
                )
                if attempt is not None and attempt <= self._max_attempts:
                    entry = step_start_entry(
                        iteration=iteration,
                        key=key,
                        agent_type=agent_type,
                        queue=queue,
                        attempt=attempt,
                        status=TaskStatus.QUEUED,  # the status the row holds replaces it
                        now=now,
                    )
                    uow.tasks.begin_step(entry, task.id, now=now)
                uow.commit()
        except TaskEnded as exc:
            log.info("step.not_begun", task_id=str(task.id), subtask=key, task_status=exc.status)
            return None
        return attempt


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


def _count_recorded(step: StepRecord) -> None:
    """A step's outcome, once: only the first recording of a key counts."""
    outcome = "succeeded" if step.status is StepStatus.COMPLETED else "failed"
    metrics.subtasks.labels(metric_label(step.agent_type), step.queue, outcome).inc()
    if step.latency_ms > 0:
        metrics.subtask_duration.labels(metric_label(step.agent_type), step.queue).observe(
            step.latency_ms / 1000
        )


def metric_label(agent_type: str) -> str:
    """A built-in type's name, else "custom": tenants' own names would grow the series."""
    return agent_type if agent_type in BUILTINS else "custom"


def bind_log_context(task: Task) -> None:
    """Name the task and its network on every line logged while working on it."""
    structlog.contextvars.bind_contextvars(task_id=str(task.id), network_id=str(task.network_id))
