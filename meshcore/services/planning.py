"""Planning an iteration: the coordinator's plan (or the client's), validated, pinned to
the agent types' current versions, and stored as the iteration's subtasks."""

from __future__ import annotations

import json
from dataclasses import replace

import structlog

from meshcore.agents import coordinator
from meshcore.domain.agent_types import COORDINATOR
from meshcore.domain.errors import InvalidPlan, TaskEnded
from meshcore.domain.network import Network
from meshcore.domain.plan import Plan, plan_to_json, validate_plan
from meshcore.domain.task import PLAN_KEY, StepRecord, StepStatus, Task
from meshcore.ports import Clock, Delivery, UnitOfWorkFactory
from meshcore.services import answers
from meshcore.services.agent_steps import NOWHERE, StepRunner
from meshcore.services.agent_types import catalog_of, current_types
from meshcore.services.step_log import Skipped
from meshcore.telemetry.tracing import stage_span

log = structlog.get_logger(__name__)


class Planner:
    def __init__(
        self, *, tenant_id: str, uow: UnitOfWorkFactory, steps: StepRunner, clock: Clock
    ) -> None:
        self._tenant_id, self._uow, self._steps, self._clock = tenant_id, uow, steps, clock

    @stage_span("mesh.plan")
    def plan(
        self,
        task: Task,
        network: Network,
        iteration: int,
        feedback: str | None,
        *,
        unplanned: bool = False,
        delivery: Delivery = NOWHERE,
    ) -> bool:
        """Record the iteration's plan and its subtasks; False if another delivery plans it.

        `unplanned`: no plan can be recorded yet, so the step log need not be asked.
        """
        recorded, plan = None, None
        if not unplanned:
            with self._uow(self._tenant_id) as uow:
                recorded = uow.steps.get(task.id, iteration, PLAN_KEY)
        if recorded is None:
            made = self._plan_step(task, network, iteration, feedback, delivery)
            if isinstance(made, Skipped):
                return False
            step, plan = made
            recorded = self._steps.record(step, network.id)
            if recorded.output != step.output:
                plan = None  # two racing planners disagreed: the recorded plan wins
        if recorded.status is StepStatus.FAILED:
            raise InvalidPlan(recorded.error or "the coordinator gave no plan")
        plan = plan or answers.recorded_plan(recorded, network)
        try:
            with self._uow(self._tenant_id) as uow:
                types = current_types(uow, {s.agent_type for s in plan.subtasks})
                plan = plan.pinned(types)
                uow.tasks.add_plan(task.id, iteration, plan, now=self._clock.now())
                uow.commit()
        except TaskEnded:
            return False  # cancelled (or timed out) while it was being planned
        log.info(
            "task.planned",
            task_id=str(task.id),
            iteration=iteration,
            subtasks=len(plan.subtasks),
            waves=len(plan.waves),
        )
        return True

    def _plan_step(
        self,
        task: Task,
        network: Network,
        iteration: int,
        feedback: str | None,
        delivery: Delivery,
    ) -> tuple[StepRecord, Plan] | Skipped:
        """The plan step and the plan it holds, read once; Skipped while another delivery
        holds the step (or once the task has ended). InvalidPlan if there is none to be had,
        or the network (changed since a client's plan was submitted) cannot run it."""
        if task.plan is not None:  # the client's own plan: no model call
            step = StepRecord(
                task.id,
                iteration,
                PLAN_KEY,
                COORDINATOR,
                "coordinator",
                StepStatus.COMPLETED,
                json.dumps(plan_to_json(task.plan)),
                recorded_at=self._clock.now(),
                worker=delivery.worker,
            )
            return step, validate_plan(task.plan, network.agent_types())
        messages = coordinator.plan_messages(
            task=task.description,
            context=task.context,
            agents=catalog_of(self._uow, self._tenant_id, network.agent_types()).values(),
            iteration=iteration,
            feedback=feedback,
        )
        step = self._steps.call(
            task,
            network,
            COORDINATOR,
            iteration,
            PLAN_KEY,
            messages,
            delivery=delivery,
            validate=answers.plan_check(network),
        )
        if isinstance(step, Skipped):
            return step
        if step.status is StepStatus.FAILED:
            raise InvalidPlan(step.error or "the coordinator gave no plan")
        # The model's answer as checked (the gateway's plan_check); read once more here to
        # keep it in canonical JSON, and no more after.
        subtasks = coordinator.read_plan(step.output)
        plan = validate_plan(subtasks, network.agent_types())
        return replace(step, output=json.dumps(plan_to_json(subtasks))), plan
