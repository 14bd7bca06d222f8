"""The critic's step: its review of an iteration's synthesis, checked and recorded, and its
feedback written to shared memory."""

from __future__ import annotations

from dataclasses import replace

from meshcore.agents import critic
from meshcore.domain.agent_types import CRITIC
from meshcore.domain.network import Network
from meshcore.domain.task import REVIEW_KEY, StepRecord, Task
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
