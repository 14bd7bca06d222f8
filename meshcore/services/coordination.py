"""The coordinator's workflow: plan, run waves, synthesise, review, revise or finish.

Each public method is the body of one queued message and is safe to run twice: state moves
only under the task's row lock, the wave counter turns a duplicate fan-in into a no-op, model
results come from the step log when already recorded, and a message that arrives for a state
the task has left does nothing. `redrive` restarts whatever a lost message left undone.

    coordinate -> run_wave(0) -> collect(0) -> run_wave(1) ... -> collect(last)
               -> synthesis -> review -> completed | coordinate (next iteration)

A network whose config.approval.plan is on stops each iteration after its plan, awaiting
approval: nothing is sent until a person approves it (TaskService.approve, which sends
`coordinate` again to run its first wave), rejects it, or its approval timeout passes.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import structlog

from meshcore.agents import critic
from meshcore.domain import workflow
from meshcore.domain.errors import MeshError
from meshcore.domain.network import Network
from meshcore.domain.task import (
    REVIEW_KEY,
    SYNTHESIS_KEY,
    StepRecord,
    StepStatus,
    Subtask,
    Task,
    TaskStatus,
)
from meshcore.ports import Clock, Delivery, Dispatcher, TaskRef, UnitOfWorkFactory
from meshcore.services import answers
from meshcore.services.agent_steps import NOWHERE, StepRunner, bind_log_context
from meshcore.services.critique import Critique, Synthesis
from meshcore.services.endings import end, time_out_if_due
from meshcore.services.learning import MemoryLearning
from meshcore.services.planning import Planner
from meshcore.services.step_log import Skipped
from meshcore.telemetry import metrics

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
        learning: MemoryLearning,
    ) -> None:
        self._tenant_id, self._uow, self._steps = tenant_id, uow, steps
        self._dispatcher, self._clock, self._learning = dispatcher, clock, learning
        self._planner = Planner(tenant_id=tenant_id, uow=uow, steps=steps, clock=clock)
        self._critique, self._synthesis = Critique(steps), Synthesis(steps)

    def coordinate(self, task_id: UUID, delivery: Delivery = NOWHERE) -> None:
        """Plan the task's current iteration and start its current wave; or, when the network
        asks for approval and no one has approved this iteration's plan, leave it awaiting.

        `delivery`: where this message runs, recorded with the plan step it may make.
        """
        with self._uow(self._tenant_id) as uow:
            task = uow.tasks.get_locked(task_id)
            bind_log_context(task)
            # A task this delivery starts has no plan yet: no other delivery plans before it.
            started = task.status is TaskStatus.QUEUED
            if started:
                if time_out_if_due(uow, self._clock, task):
                    return
                task.transition(TaskStatus.PLANNING, now=self._clock.now())
                task.iteration, task.is_held = 1, False
                uow.tasks.save(task)
                uow.commit()
                self._dispatcher.expire(self._ref(task), task.deadline_at)
            elif task.status not in (TaskStatus.PLANNING, TaskStatus.RUNNING) or time_out_if_due(
                uow, self._clock, task
            ):
                return
            network = uow.networks.get(task.network_id)
            iteration = task.iteration
            has_plan = not started and bool(uow.tasks.subtasks(task_id, iteration))
            feedback = answers.feedback_of(uow, task_id, iteration - 1)
        if not has_plan:
            try:
                planned = self._planner.plan(
                    task, network, iteration, feedback, unplanned=started, delivery=delivery
                )
                if not planned:
                    return  # another delivery is planning it right now
            except MeshError as exc:
                self._fail(task_id, f"planning failed: {exc}")
                return
        with self._uow(self._tenant_id) as uow:
            task = uow.tasks.get_locked(task_id)
            if task.iteration != iteration:
                return
            subtasks = uow.tasks.subtasks(task_id, iteration)
            approval = network.config.approval
            if workflow.awaits_approval(task, network.config, lambda: uow.tasks.history(task_id)):
                # Nothing is sent until a person approves: the task holds no worker.
                task.await_approval(
                    subtasks, now=self._clock.now(), timeout_seconds=approval.timeout_seconds
                )
                uow.tasks.save(task)
                uow.commit()
            elif task.status is TaskStatus.PLANNING:
                task.transition(TaskStatus.RUNNING, now=self._clock.now(), iteration=iteration)
                uow.tasks.save(task)
                uow.commit()
            elif task.status is not TaskStatus.RUNNING:
                return  # awaiting approval (a duplicate delivery), or ended
        if task.status is TaskStatus.AWAITING_APPROVAL:
            self._dispatcher.expire(self._ref(task), task.deadline_at)
            log.info("task.awaiting_approval", task_id=str(task_id), iteration=iteration)
            return
        self._drive_wave(task, subtasks)

    def run_step(
        self, task_id: UUID, iteration: int, key: str, delivery: Delivery = NOWHERE
    ) -> str:
        """Run one specialist subtask; answers the recorded status (or "skipped")."""
        step = self._steps.run_subtask(task_id, iteration, key, delivery)
        return "skipped" if isinstance(step, Skipped) else step.status.value

    def collect(
        self, task_id: UUID, iteration: int, wave: int, delivery: Delivery = NOWHERE
    ) -> None:
        """Fan-in of a wave, decided from the step log: next wave, or synthesis.

        `delivery`: where this message runs, recorded with the synthesis step it may make.
        """
        with self._uow(self._tenant_id) as uow:
            task = uow.tasks.get_locked(task_id)
            bind_log_context(task)
            if task.iteration != iteration or task.status.is_terminal:
                return
            if time_out_if_due(uow, self._clock, task):
                return
            if task.status is TaskStatus.REVIEWING:
                self._dispatcher.review(self._ref(task), iteration)
                return
            network = uow.networks.get(task.network_id)
            decided: workflow.AfterWave = workflow.Synthesise()
            if task.status is TaskStatus.RUNNING:
                if task.wave != wave:
                    return  # a duplicate fan-in: this wave was already collected
                subtasks = uow.tasks.subtasks(task_id, iteration)
                over = network.config.budget.refusal(task.usage)
                decided = workflow.after_wave(subtasks, wave, over)
                if isinstance(decided, workflow.WaitForSteps):
                    log.warning(
                        "wave.incomplete", task_id=str(task_id), wave=wave + 1,
                        missing=list(decided.missing),
                    )  # fmt: skip
                    return
                if isinstance(decided, workflow.FailTask):
                    end(uow, self._clock, task, TaskStatus.FAILED, decided.reason)
                    return
                if isinstance(decided, workflow.RunWave):
                    task.advance_wave(now=self._clock.now())
                else:
                    task.transition(TaskStatus.SYNTHESIZING, now=self._clock.now())
                uow.tasks.save(task)
                uow.commit()
            elif task.status is not TaskStatus.SYNTHESIZING:
                return
            steps = uow.steps.for_iteration(task_id, iteration)
            feedback = answers.feedback_of(uow, task_id, iteration - 1)
        if isinstance(decided, workflow.RunWave):
            self._dispatcher.run_wave(self._ref(task), iteration, wave + 1, decided.subtasks)
            return
        self._synthesise(task, network, iteration, steps, feedback, delivery)

    def review(self, task_id: UUID, iteration: int, delivery: Delivery = NOWHERE) -> None:
        """The critic scores the synthesis; the task completes or goes round again."""
        with self._uow(self._tenant_id) as uow:
            task = uow.tasks.get(task_id)
            bind_log_context(task)
            if task.status is not TaskStatus.REVIEWING or task.iteration != iteration:
                return
            network = uow.networks.get(task.network_id)
            recorded = uow.steps.get(task_id, iteration, REVIEW_KEY)
            synthesis = uow.steps.get(task_id, iteration, SYNTHESIS_KEY)
        if recorded is None:
            recorded = self._critique.review(task, network, iteration, synthesis, delivery)
            if isinstance(recorded, Skipped):
                return  # another delivery holds the review, or the task has ended
        if recorded.status is StepStatus.FAILED:
            self._fail(task_id, f"review failed: {recorded.error}")
            return
        verdict = critic.read_verdict(recorded.output)
        with self._uow(self._tenant_id) as uow:
            task = uow.tasks.get_locked(task_id)
            if task.status is not TaskStatus.REVIEWING or task.iteration != iteration:
                return
            now, score = self._clock.now(), verdict.score
            workflow.conclude_review(task, verdict.score, verdict.feedback, network.config, now)
            lessons = self._learning.record_verdict(uow, task, iteration, score, network.config)
            uow.tasks.save(task)
            uow.commit()
        self._learning.tell_view(task.network_id, lessons)
        metrics.critic_score.observe(score)
        if task.status is TaskStatus.COMPLETED:
            metrics.task_finished(task.status.value, task.created_at, now)
        log.info("task.reviewed", task_id=str(task_id), iteration=iteration, score=score,
                 status=task.status.value)  # fmt: skip
        if task.status is TaskStatus.RUNNING:
            self._dispatcher.coordinate(self._ref(task))

    def expire(self, task_id: UUID) -> None:
        """End a task that is past its deadline, keeping what it has."""
        with self._uow(self._tenant_id) as uow:
            task = uow.tasks.get_locked(task_id)
            if not task.status.is_terminal:
                time_out_if_due(uow, self._clock, task)

    def redrive(self, task_id: UUID, stalled_before: datetime) -> str | None:
        """Restart a stalled task from what the record holds; answers what was re-sent.

        Only the missing work is sent again: a wave's recorded steps are not re-run.
        """
        with self._uow(self._tenant_id) as uow:
            task = uow.tasks.get_locked(task_id)
            if task.status is TaskStatus.AWAITING_APPROVAL:
                # No message of it is in flight to be lost: a person moves it next. Only its
                # deadline, should the expiry be lost, is the sweeper's to keep.
                return "timed out" if time_out_if_due(uow, self._clock, task) else None
            beat = task.heartbeat_at
            if task.status.is_terminal or task.is_held or (beat and beat >= stalled_before):
                return None  # finished, held on purpose, or another sweeper got here first
            if time_out_if_due(uow, self._clock, task):
                return "timed out"
            subtasks = uow.tasks.subtasks(task_id, task.iteration) if task.iteration else []
            action = workflow.redrive_action(task, subtasks)
            config = uow.networks.get(task.network_id).config
            if action != "coordinate" and workflow.awaits_approval(
                task, config, lambda: uow.tasks.history(task_id)
            ):
                action = "coordinate"  # a revision's plan, stored but not yet put to a person
            task.record_recovery(now=self._clock.now(), action=action)
            uow.tasks.save(task)
            uow.commit()
        log.warning("task.redriven", task_id=str(task_id), status=task.status.value, action=action)
        ref = self._ref(task)
        if action == "coordinate":
            self._dispatcher.coordinate(ref)
        elif action == "review":
            self._dispatcher.review(ref, task.iteration)
        else:
            self._drive_wave(task, subtasks)  # the missing steps, or the fan-in if none
        return action

    def _drive_wave(self, task: Task, subtasks: list[Subtask]) -> None:
        """Send the current wave's unrecorded steps, or straight to fan-in if there are none."""
        missing = [s.planned for s in subtasks if s.wave == task.wave and s.step is None]
        if missing:
            self._dispatcher.run_wave(self._ref(task), task.iteration, task.wave, missing)
        else:
            self._dispatcher.collect(self._ref(task), task.iteration, task.wave)

    def _synthesise(
        self, task: Task, network: Network, iteration: int, steps: list[StepRecord],
        feedback: str | None, delivery: Delivery = NOWHERE,
    ) -> None:  # fmt: skip
        recorded = self._synthesis.run(task, network, iteration, steps, feedback, delivery)
        if isinstance(recorded, Skipped):
            return  # another delivery holds the synthesis, or the task has ended
        if recorded.status is StepStatus.FAILED:
            self._fail(task.id, f"synthesis failed: {recorded.error}")
            return
        with self._uow(self._tenant_id) as uow:
            task = uow.tasks.get_locked(task.id)
            if task.status is not TaskStatus.SYNTHESIZING or task.iteration != iteration:
                return
            task.result = workflow.result_of(
                answer=recorded.output, iteration=iteration, merged=workflow.contributions(steps)
            )
            task.transition(TaskStatus.REVIEWING, now=self._clock.now())
            uow.tasks.save(task)
            uow.commit()
        self._dispatcher.review(self._ref(task), iteration)

    def _fail(self, task_id: UUID, reason: str) -> None:
        with self._uow(self._tenant_id) as uow:
            task = uow.tasks.get_locked(task_id)
            if not task.status.is_terminal:
                end(uow, self._clock, task, TaskStatus.FAILED, reason)

    def _ref(self, task: Task) -> TaskRef:
        return TaskRef(self._tenant_id, task.id, task.priority)
