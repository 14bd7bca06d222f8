"""Running one step of one agent: build its prompt, call its model chain, record the result.

A step is keyed by (task, iteration, key). The step log in Postgres keeps the first result
recorded under a key; a redelivered step finds it and never calls the model again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any
from uuid import UUID

import structlog

from meshcore.agents import AgentProfile, profile_for
from meshcore.agents.answer_schema import read_answer
from meshcore.domain.agent_types import ToolServer, own_queue
from meshcore.domain.errors import ModelUnavailable, NotFound, Unavailable
from meshcore.domain.memory import MemoryItem
from meshcore.domain.network import Network
from meshcore.domain.task import StepRecord, StepStatus, Task
from meshcore.ports import (
    AgentActivity,
    Clock,
    Completion,
    Delivery,
    MemoryStore,
    Message,
    ModelClient,
    TaskRevisions,
    ToolClient,
    UnitOfWorkFactory,
)
from meshcore.services.agent_types import definition_at
from meshcore.services.lifetimes import DEFAULT_BOUND
from meshcore.services.memory_view import MemoryView
from meshcore.services.retrieval import Retrieval, StepMemory
from meshcore.services.step_log import Skipped, StepLog, StepOutcome, metric_label
from meshcore.services.tool_loop import StepFailed, ToolLoop
from meshcore.telemetry import metrics
from meshcore.telemetry.tracing import current_traceparent, tracer

log = structlog.get_logger(__name__)

NOWHERE = Delivery()


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
        memory_tokens: int = 2000,
        lease_seconds: float = 90.0,
        max_attempts: int = 5,
        revisions: TaskRevisions | None = None,
        tools: ToolClient | None = None,
        max_tool_calls: int = 8,
        memory_bound: int = DEFAULT_BOUND,
    ) -> None:
        self._tenant_id, self._uow = tenant_id, uow
        self._memory = MemoryView(
            tenant_id=tenant_id, uow=uow, store=memory, clock=clock, bound=memory_bound
        )
        self._activity, self._models, self._clock = activity, models, clock
        self._reader = StepMemory(
            Retrieval(self._memory, clock), memory_min_confidence, memory_limit, memory_tokens
        )
        self._lease_seconds, self._max_attempts = lease_seconds, max_attempts
        self._revisions = revisions
        self._log = StepLog(
            tenant_id=tenant_id, uow=uow, memory=self._memory, clock=clock,
            lease_seconds=lease_seconds, max_attempts=max_attempts,
        )  # fmt: skip
        self._tool_loop = ToolLoop(
            tenant_id=tenant_id, uow=uow, clock=clock, tools=tools, max_tool_calls=max_tool_calls
        )

    def run_subtask(
        self, task_id: UUID, iteration: int, key: str, delivery: Delivery = NOWHERE
    ) -> StepOutcome:
        """Run a specialist's subtask once; a replay returns the recorded step."""
        named = {"mesh.task_id": str(task_id), "mesh.iteration": iteration, "mesh.subtask": key}
        with tracer.start_as_current_span("mesh.agent_step", attributes=named) as span:
            step = self._run_subtask(task_id, iteration, key, delivery)
            if isinstance(step, StepRecord):
                span.set_attribute("mesh.agent", str(step.agent_type))
                span.set_attribute("mesh.step_status", step.status.value)
            return step

    def _run_subtask(
        self, task_id: UUID, iteration: int, key: str, delivery: Delivery
    ) -> StepOutcome:
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
                return Skipped.TASK_ENDED
            network = uow.networks.get(task.network_id)
            planned = subtask.planned
            definition = definition_at(uow, planned.agent_type, planned.agent_version)
        profile = profile_for(definition)
        dependencies = self._memory.for_subtasks(network.id, task_id, planned.depends_on)
        dependencies = [m for m in dependencies if m.metadata.get("iteration") == iteration]
        memory = self._reader.read(
            network.id, agent_type=planned.agent_type, reads=profile.reads,
            subtask=planned.description, task=task.description,
            tokens=definition.memory_tokens, exclude={m.id for m in dependencies},
        )  # fmt: skip
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
        if isinstance(step, Skipped):
            return step
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
    ) -> StepOutcome:
        """Call the agent's model chain; a chain that cannot answer yields a failed step,
        and so does a call the network's budget cannot pay for (without calling). Skipped:
        another attempt holds the step's lease and is still running, or the task ended."""
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
            return self._failed(base, f"the network has no enabled {agent_type} agent")
        estimate = sum(len(m.content) for m in messages) // 4 + agent.model.max_tokens
        refusal = network.config.budget.refusal(task.usage, estimate)
        if refusal is not None:
            log.warning("step.over_budget", task_id=str(task.id), subtask=key, reason=refusal)
            return self._failed(base, refusal)
        attempt = self._log.begin(task, iteration, key, agent_type, base["queue"])
        if isinstance(attempt, Skipped):
            if attempt is Skipped.LEASED_ELSEWHERE:  # the step log has told of an ended task
                log.info(
                    "step.leased_elsewhere", task_id=str(task.id), iteration=iteration, subtask=key
                )
            return attempt
        if attempt > self._max_attempts:
            # Each earlier attempt died with its worker (or kept timing out): a poison step.
            error = f"gave up after {attempt - 1} attempts that never finished"
            return self._failed(base, error, attempt=attempt)
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
                completion = self._tool_loop.run(
                    task, agent_type, iteration, key, messages, complete,
                    servers=tool_servers, limit=max_tool_calls,
                )  # fmt: skip
            else:
                completion = complete(messages)
        except StepFailed as exc:
            log.warning("step.tools_failed", task_id=str(task.id), subtask=key, error=str(exc))
            took_ms = (time.perf_counter() - started) * 1000
            return self._failed(
                base, str(exc), model=exc.model, usage=exc.usage, latency_ms=took_ms
            )
        except ModelUnavailable as exc:
            log.warning("step.model_unavailable", task_id=str(task.id), subtask=key, error=str(exc))
            took_ms = (time.perf_counter() - started) * 1000
            return self._failed(base, str(exc), latency_ms=took_ms)
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
        """Record a step, first write wins (StepLog.record)."""
        return self._log.record(step, network_id, item)

    def memory_item(
        self, task: Task, network: Network, step: StepRecord, profile: AgentProfile
    ) -> MemoryItem | None:
        """What a completed step writes to shared memory (StepLog.memory_item)."""
        return self._log.memory_item(task, network, step, profile)

    def _failed(self, base: dict[str, Any], error: str, **recorded: Any) -> StepRecord:
        """A step that failed without an answer: refused, given up, or its chain gave none."""
        now = self._clock.now()
        return StepRecord(
            **base, status=StepStatus.FAILED, output="", recorded_at=now, error=error, **recorded
        )


def bind_log_context(task: Task) -> None:
    """Name the task and its network on every line logged while working on it."""
    structlog.contextvars.bind_contextvars(task_id=str(task.id), network_id=str(task.network_id))
