"""The two steps that close an iteration: the coordinator's synthesis of the specialists'
work, and the critic's review of it; each checked, recorded once, and written to memory."""

from __future__ import annotations

from dataclasses import replace

from meshcore.agents import coordinator, critic
from meshcore.domain import workflow
from meshcore.domain.agent_types import COORDINATOR, CRITIC
from meshcore.domain.network import Network
from meshcore.domain.task import REVIEW_KEY, SYNTHESIS_KEY, StepRecord, Task
from meshcore.ports import Delivery
from meshcore.services import answers
from meshcore.services.agent_steps import StepRunner
from meshcore.services.step_log import Skipped, StepOutcome
from meshcore.telemetry.tracing import stage_span


class Critique:
    def __init__(self, steps: StepRunner) -> None:
        self._steps = steps

    @stage_span("mesh.critique")
    def review(
        self,
        task: Task,
        network: Network,
        iteration: int,
        synthesis: StepRecord | None,
        delivery: Delivery,
    ) -> StepOutcome:
        """The critic's review of the synthesis, recorded; Skipped if another delivery holds
        it (or the task ended)."""
        messages = critic.review_messages(
            task=task.description, answer=synthesis.output if synthesis else "", iteration=iteration
        )
        step = self._steps.call(
            task,
            network,
            CRITIC,
            iteration,
            REVIEW_KEY,
            messages,
            delivery=delivery,
            validate=answers.verdict_check,
        )
        if isinstance(step, Skipped):
            return step
        step = answers.normalised_verdict(step)
        item = self._steps.memory_item(task, network, step, critic.PROFILE)
        if item is not None:
            verdict = critic.read_verdict(step.output)
            item = replace(item, content=verdict.feedback or f"score {verdict.score:.2f}")
        return self._steps.record(step, network.id, item)


class Synthesis:
    def __init__(self, steps: StepRunner) -> None:
        self._steps = steps

    @stage_span(
        "mesh.synthesis",
        links=lambda steps: (s.traceparent for s in workflow.contributions(steps)),
    )
    def run(
        self,
        task: Task,
        network: Network,
        iteration: int,
        steps: list[StepRecord],
        feedback: str | None,
        delivery: Delivery,
    ) -> StepOutcome:
        """The iteration's synthesis as recorded (made now if it is not yet); Skipped while
        another delivery holds it (or once the task has ended)."""
        recorded = next((s for s in steps if s.key == SYNTHESIS_KEY), None)
        if recorded is not None:
            return recorded
        messages = coordinator.synthesis_messages(
            task=task.description, steps=workflow.contributions(steps), feedback=feedback
        )
        step = self._steps.call(
            task, network, COORDINATOR, iteration, SYNTHESIS_KEY, messages, delivery=delivery
        )
        if isinstance(step, Skipped):
            return step
        item = self._steps.memory_item(task, network, step, coordinator.PROFILE)
        return self._steps.record(step, network.id, item)
