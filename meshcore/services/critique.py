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
    ) -> StepRecord | None:
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
        if step is None:
            return None
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
    ) -> StepRecord | None:
        """The iteration's synthesis as recorded (made now if it is not yet); None while
        another delivery holds it."""
        recorded = next((s for s in steps if s.key == SYNTHESIS_KEY), None)
        if recorded is not None:
            return recorded
        messages = coordinator.synthesis_messages(
            task=task.description, steps=workflow.contributions(steps), feedback=feedback
        )
        step = self._steps.call(
            task, network, COORDINATOR, iteration, SYNTHESIS_KEY, messages, delivery=delivery
        )
        if step is None:
            return None
        item = self._steps.memory_item(task, network, step, coordinator.PROFILE)
        return self._steps.record(step, network.id, item)
