"""The coordinator's and critic's answers: how they are checked and read back from the log."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from uuid import UUID

from meshcore.agents import coordinator, critic
from meshcore.domain.errors import InvalidPlan
from meshcore.domain.network import Network
from meshcore.domain.plan import Plan, parse_plan, validate_plan
from meshcore.domain.task import REVIEW_KEY, StepRecord, StepStatus
from meshcore.ports import UnitOfWork


def plan_check(network: Network) -> Callable[[str], object]:
    """What the gateway asks of a plan answer: JSON that makes a runnable plan here."""

    def check(text: str) -> object:
        try:
            return validate_plan(coordinator.read_plan(text), network.agent_types())
        except InvalidPlan as exc:
            raise ValueError(str(exc)) from exc

    return check


def verdict_check(text: str) -> object:
    try:
        return critic.read_verdict(text)
    except critic.InvalidVerdict as exc:
        raise ValueError(str(exc)) from exc


def recorded_plan(step: StepRecord, network: Network) -> Plan:
    return validate_plan(parse_plan(json.loads(step.output)), network.agent_types())


def feedback_of(uow: UnitOfWork, task_id: UUID, iteration: int) -> str | None:
    """The critic's feedback on an iteration, which the next one must address."""
    if iteration < 1:
        return None
    step = uow.steps.get(task_id, iteration, REVIEW_KEY)
    if step is None or step.status is not StepStatus.COMPLETED:
        return None
    return critic.read_verdict(step.output).feedback or None


def normalised_verdict(step: StepRecord) -> StepRecord:
    """Keep the verdict as canonical JSON, or fail the step if the critic gave none."""
    if step.status is not StepStatus.COMPLETED:
        return step
    try:
        verdict = critic.read_verdict(step.output)
    except critic.InvalidVerdict as exc:
        return replace(step, status=StepStatus.FAILED, error=str(exc))
    return replace(step, output=json.dumps({"score": verdict.score, "feedback": verdict.feedback}))
