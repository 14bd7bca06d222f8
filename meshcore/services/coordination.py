"""The coordinator's workflow: plan, run waves, synthesise, review, revise or finish.

Each public method is the body of one queued message and is safe to run twice: state moves
only under the task's row lock, model results come from the step log when already recorded,
and a message that arrives for a state the task has left does nothing.

    coordinate -> run_wave(0) -> collect(0) -> run_wave(1) ... -> collect(last)
               -> synthesis -> review -> completed | coordinate (next iteration)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from uuid import UUID

import structlog

from meshcore.agents import coordinator, critic
from meshcore.domain.errors import InvalidPlan, MeshError
from meshcore.domain.network import AgentType, Network
from meshcore.domain.plan import Plan, parse_plan, plan_to_json, validate_plan
from meshcore.domain.task import (
    PLAN_KEY,
    REVIEW_KEY,
    SYNTHESIS_KEY,
    StepRecord,
    StepStatus,
    Subtask,
    Task,
    TaskStatus,
)
from meshcore.ports import Clock, Delivery, Dispatcher, TaskRef, UnitOfWork, UnitOfWorkFactory
from meshcore.services.agent_steps import NOWHERE, StepRunner

log = structlog.get_logger(__name__)


class Coordination:
    def __init__(
        self,
        *,
        tenant_id: str,
        uow: UnitOfWorkFactory,
        steps: StepRunner,
        dispatcher: Dispatcher,
        clock: Clock,
    ) -> None:
        self._tenant_id, self._uow, self._steps = tenant_id, uow, steps
        self._dispatcher, self._clock = dispatcher, clock

    def coordinate(self, task_id: UUID) -> None:
        """Plan the task's current iteration and start its first wave."""
        with self._uow(self._tenant_id) as uow:
            task = uow.tasks.get(task_id, lock=True)
            if task.status is TaskStatus.QUEUED:
                if self._has_timed_out(uow, task):
                    return
                task.transition(TaskStatus.PLANNING, now=self._clock.now())
                task.iteration = 1
                uow.tasks.save(task)
                uow.commit()
                self._dispatcher.expire(self._ref(task), task.deadline_at)
            elif task.status not in (
                TaskStatus.PLANNING,
                TaskStatus.RUNNING,
            ) or self._has_timed_out(uow, task):
                return
            network = uow.networks.get(task.network_id)
            iteration = task.iteration
            subtasks = uow.tasks.subtasks(task_id, iteration)
            feedback = _feedback(uow, task_id, iteration - 1)
        if not subtasks:
            try:
                self._plan(task, network, iteration, feedback)
            except MeshError as exc:
                self._fail(task_id, f"planning failed: {exc}")
                return
        with self._uow(self._tenant_id) as uow:
            task = uow.tasks.get(task_id, lock=True)
            if task.iteration != iteration:
                return
            if task.status is TaskStatus.PLANNING:
                task.transition(TaskStatus.RUNNING, now=self._clock.now(), iteration=iteration)
                uow.tasks.save(task)
                uow.commit()
            elif task.status is not TaskStatus.RUNNING:
                return
            first_wave = [s.planned for s in uow.tasks.subtasks(task_id, iteration) if s.wave == 0]
        self._dispatcher.run_wave(self._ref(task), iteration, 0, first_wave)

    def run_step(
        self, task_id: UUID, iteration: int, key: str, delivery: Delivery = NOWHERE
    ) -> str:
        """Run one specialist subtask; answers the recorded status (or "skipped")."""
        step = self._steps.run_subtask(task_id, iteration, key, delivery)
        return step.status.value if step else "skipped"

    def collect(self, task_id: UUID, iteration: int, wave: int) -> None:
        """Fan-in of a wave, decided from the step log: next wave, or synthesis."""
        with self._uow(self._tenant_id) as uow:
            task = uow.tasks.get(task_id, lock=True)
            if task.iteration != iteration or task.status.is_terminal:
                return
            if self._has_timed_out(uow, task):
                return
            if task.status is TaskStatus.REVIEWING:
                self._dispatcher.review(self._ref(task), iteration)
                return
            network = uow.networks.get(task.network_id)
            next_wave = None
            if task.status is TaskStatus.RUNNING:
                waves = _waves(uow.tasks.subtasks(task_id, iteration))
                this = waves[wave]
                missing = [s.key for s in this if s.step is None]
                if missing:
                    log.warning("wave.incomplete", task_id=str(task_id), wave=wave, missing=missing)
                    return
                # Concurrent steps can cross the budget together; nothing more is spent then.
                over = network.config.budget.refusal(task.usage)
                if over is not None:
                    self._end(uow, task, TaskStatus.FAILED, over)
                    return
                failed = [s for s in this if s.status == StepStatus.FAILED]
                if failed:
                    reason = f"subtask {failed[0].key} failed: {failed[0].step.error}"
                    self._end(uow, task, TaskStatus.FAILED, reason)
                    return
                if wave + 1 < len(waves):
                    next_wave = [s.planned for s in waves[wave + 1]]
                else:
                    task.transition(TaskStatus.SYNTHESIZING, now=self._clock.now())
                    uow.tasks.save(task)
                    uow.commit()
            elif task.status is not TaskStatus.SYNTHESIZING:
                return
            steps = uow.steps.for_iteration(task_id, iteration)
            feedback = _feedback(uow, task_id, iteration - 1)
        if next_wave is not None:
            self._dispatcher.run_wave(self._ref(task), iteration, wave + 1, next_wave)
            return
        self._synthesise(task, network, iteration, steps, feedback)

    def review(self, task_id: UUID, iteration: int, delivery: Delivery = NOWHERE) -> None:
        """The critic scores the synthesis; the task completes or goes round again."""
        with self._uow(self._tenant_id) as uow:
            task = uow.tasks.get(task_id)
            if task.status is not TaskStatus.REVIEWING or task.iteration != iteration:
                return
            network = uow.networks.get(task.network_id)
            recorded = uow.steps.get(task_id, iteration, REVIEW_KEY)
            synthesis = uow.steps.get(task_id, iteration, SYNTHESIS_KEY)
        if recorded is None:
            answer = synthesis.output if synthesis else ""
            messages = critic.review_messages(
                task=task.description, answer=answer, iteration=iteration
            )
            step = self._steps.call(
                task,
                network,
                AgentType.CRITIC,
                iteration,
                REVIEW_KEY,
                messages,
                delivery=delivery,
                validate=_verdict_check,
            )
            step = _normalise_verdict(step)
            item = self._steps.memory_item(
                task, network, step, confidence=critic.PROFILE.confidence
            )
            if item is not None:
                verdict = critic.read_verdict(step.output)
                item = replace(item, content=verdict.feedback or f"score {verdict.score:.2f}")
            recorded = self._steps.record(step, item)
        if recorded.status is StepStatus.FAILED:
            self._fail(task_id, f"review failed: {recorded.error}")
            return
        verdict = critic.read_verdict(recorded.output)
        with self._uow(self._tenant_id) as uow:
            task = uow.tasks.get(task_id, lock=True)
            if task.status is not TaskStatus.REVIEWING or task.iteration != iteration:
                return
            task.result = {
                **(task.result or {}),
                "score": verdict.score,
                "feedback": verdict.feedback,
            }
            threshold = network.config.quality_threshold
            now = self._clock.now()
            if verdict.score >= threshold:
                task.transition(
                    TaskStatus.COMPLETED,
                    now=now,
                    reason="quality threshold met",
                    score=verdict.score,
                )
            elif iteration >= network.config.max_iterations:
                task.transition(
                    TaskStatus.COMPLETED,
                    now=now,
                    reason="iteration budget spent",
                    score=verdict.score,
                )
            else:
                task.transition(
                    TaskStatus.RUNNING,
                    now=now,
                    reason="revision",
                    score=verdict.score,
                    iteration=iteration + 1,
                )
                task.iteration = iteration + 1
            uow.tasks.save(task)
            uow.commit()
        log.info(
            "task.reviewed",
            task_id=str(task_id),
            iteration=iteration,
            score=verdict.score,
            status=task.status.value,
        )
        if task.status is TaskStatus.RUNNING:
            self._dispatcher.coordinate(self._ref(task))

    def expire(self, task_id: UUID) -> None:
        """End a task that is past its deadline, keeping what it has."""
        with self._uow(self._tenant_id) as uow:
            task = uow.tasks.get(task_id, lock=True)
            if not task.status.is_terminal:
                self._has_timed_out(uow, task)

    def _plan(self, task: Task, network: Network, iteration: int, feedback: str | None) -> None:
        with self._uow(self._tenant_id) as uow:
            recorded = uow.steps.get(task.id, iteration, PLAN_KEY)
        if recorded is not None and recorded.status is StepStatus.COMPLETED:
            # The plan was recorded by an earlier delivery that died before storing subtasks.
            self._store_plan(task.id, iteration, _recorded_plan(recorded, network))
            return
        if task.plan is not None:
            planned = task.plan
            step = StepRecord(
                task.id,
                iteration,
                PLAN_KEY,
                AgentType.COORDINATOR,
                "coordinator",
                StepStatus.COMPLETED,
                json.dumps(plan_to_json(planned)),
                recorded_at=self._clock.now(),
            )
        else:
            messages = coordinator.plan_messages(
                task=task.description,
                context=task.context,
                agents=network.agent_types(),
                iteration=iteration,
                feedback=feedback,
            )
            step = self._steps.call(
                task,
                network,
                AgentType.COORDINATOR,
                iteration,
                PLAN_KEY,
                messages,
                validate=_plan_check(network),
            )
            if step.status is StepStatus.FAILED:
                raise InvalidPlan(step.error or "the coordinator gave no plan")
            planned = coordinator.read_plan(step.output)
            step = replace(step, output=json.dumps(plan_to_json(planned)))
        validate_plan(planned, network.agent_types())
        recorded = self._steps.record(step)
        # Two racing planners may disagree; the recorded plan wins and both follow it.
        self._store_plan(task.id, iteration, _recorded_plan(recorded, network))

    def _store_plan(self, task_id: UUID, iteration: int, plan: Plan) -> None:
        with self._uow(self._tenant_id) as uow:
            uow.tasks.add_plan(task_id, iteration, plan)
            uow.commit()
        log.info(
            "task.planned",
            task_id=str(task_id),
            iteration=iteration,
            subtasks=len(plan.subtasks),
            waves=len(plan.waves),
        )

    def _synthesise(
        self,
        task: Task,
        network: Network,
        iteration: int,
        steps: list[StepRecord],
        feedback: str | None,
    ) -> None:
        recorded = next((s for s in steps if s.key == SYNTHESIS_KEY), None)
        contributions = [s for s in steps if not s.key.startswith("@")]
        if recorded is None:
            messages = coordinator.synthesis_messages(
                task=task.description, steps=contributions, feedback=feedback
            )
            step = self._steps.call(
                task, network, AgentType.COORDINATOR, iteration, SYNTHESIS_KEY, messages
            )
            item = self._steps.memory_item(
                task, network, step, confidence=coordinator.PROFILE.confidence
            )
            recorded = self._steps.record(step, item)
        if recorded.status is StepStatus.FAILED:
            self._fail(task.id, f"synthesis failed: {recorded.error}")
            return
        with self._uow(self._tenant_id) as uow:
            task = uow.tasks.get(task.id, lock=True)
            if task.status is not TaskStatus.SYNTHESIZING or task.iteration != iteration:
                return
            task.result = {
                "answer": recorded.output,
                "iteration": iteration,
                "contributions": [
                    {"subtask": s.key, "agent": s.agent_type.value, "output": s.output}
                    for s in contributions
                ],
            }
            task.transition(TaskStatus.REVIEWING, now=self._clock.now())
            uow.tasks.save(task)
            uow.commit()
        self._dispatcher.review(self._ref(task), iteration)

    def _has_timed_out(self, uow: UnitOfWork, task: Task) -> bool:
        if not task.is_past_deadline(self._clock.now()):
            return False
        timeout = (task.deadline_at - task.created_at).total_seconds()
        self._end(uow, task, TaskStatus.TIMED_OUT, f"timed out after {timeout:.0f} s")
        return True

    def _fail(self, task_id: UUID, reason: str) -> None:
        with self._uow(self._tenant_id) as uow:
            task = uow.tasks.get(task_id, lock=True)
            if not task.status.is_terminal:
                self._end(uow, task, TaskStatus.FAILED, reason)

    def _end(self, uow: UnitOfWork, task: Task, status: TaskStatus, reason: str) -> None:
        """End a task with what it has: the last answer and this iteration's contributions."""
        steps = uow.steps.for_iteration(task.id, task.iteration) if task.iteration else []
        done = [s for s in steps if not s.key.startswith("@") and s.status is StepStatus.COMPLETED]
        task.result = {
            **(task.result or {}),
            "partial": True,
            "contributions": [
                {"subtask": s.key, "agent": s.agent_type.value, "output": s.output} for s in done
            ],
        }
        task.error = reason
        task.transition(status, now=self._clock.now(), reason=reason)
        uow.tasks.save(task)
        uow.commit()
        log.info("task.ended", task_id=str(task.id), status=status.value, reason=reason)

    def _ref(self, task: Task) -> TaskRef:
        return TaskRef(self._tenant_id, task.id, task.priority)


def _waves(subtasks: list[Subtask]) -> list[list[Subtask]]:
    count = max((s.wave for s in subtasks), default=-1) + 1
    return [[s for s in subtasks if s.wave == w] for w in range(count)]


def _plan_check(network: Network) -> Callable[[str], object]:
    """What the gateway asks of a plan answer: JSON that makes a runnable plan here."""

    def check(text: str) -> object:
        try:
            return validate_plan(coordinator.read_plan(text), network.agent_types())
        except InvalidPlan as exc:
            raise ValueError(str(exc)) from exc

    return check


def _verdict_check(text: str) -> object:
    try:
        return critic.read_verdict(text)
    except critic.InvalidVerdict as exc:
        raise ValueError(str(exc)) from exc


def _recorded_plan(step: StepRecord, network: Network) -> Plan:
    return validate_plan(parse_plan(json.loads(step.output)), network.agent_types())


def _feedback(uow: UnitOfWork, task_id: UUID, iteration: int) -> str | None:
    if iteration < 1:
        return None
    step = uow.steps.get(task_id, iteration, REVIEW_KEY)
    if step is None or step.status is not StepStatus.COMPLETED:
        return None
    return critic.read_verdict(step.output).feedback or None


def _normalise_verdict(step: StepRecord) -> StepRecord:
    """Keep the verdict as canonical JSON, or fail the step if the critic gave none."""
    if step.status is not StepStatus.COMPLETED:
        return step
    try:
        verdict = critic.read_verdict(step.output)
    except critic.InvalidVerdict as exc:
        return replace(step, status=StepStatus.FAILED, error=str(exc))
    return replace(step, output=json.dumps({"score": verdict.score, "feedback": verdict.feedback}))
