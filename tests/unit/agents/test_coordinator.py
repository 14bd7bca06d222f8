from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from uuid import uuid4

import pytest

from meshcore.agents import BUILTINS, coordinator
from meshcore.domain.errors import InvalidPlan
from meshcore.domain.network import AgentType
from meshcore.domain.plan import PlannedSubtask
from meshcore.domain.task import StepRecord, StepStatus


def user_prompt(**overrides: object) -> str:
    kwargs: dict[str, object] = {
        "task": "Launch Orbit",
        "context": {},
        "agents": BUILTINS.values(),
        "iteration": 1,
        "feedback": None,
        **overrides,
    }
    system, user = coordinator.plan_messages(**kwargs)  # type: ignore[arg-type]
    assert "Answer format: plan_json" in system.content
    return user.content


def test_a_plan_prompt_offers_only_the_specialists_the_network_has() -> None:
    prompt = user_prompt(agents=[BUILTINS[t] for t in ("coordinator", "critic", "design")])

    assert "Available agents: design\n" in prompt


def test_a_plan_prompt_tells_the_planner_what_each_specialist_does() -> None:
    legal = replace(
        BUILTINS["research"],
        name="legal",
        description="Checks claims against advertising law.",
        capabilities=("compliance",),
        is_builtin=False,
        queue="agent.general",
    )
    prompt = user_prompt(agents=[legal, BUILTINS["design"]])

    assert "Available agents: design, legal\n" in prompt
    assert "- legal: Checks claims against advertising law. (capabilities: compliance)" in prompt
    assert f"- design: {BUILTINS['design'].description}" in prompt


def test_a_plan_prompt_lists_every_specialist_of_the_default_team_in_order() -> None:
    prompt = user_prompt()

    assert "Available agents: analytics, content, design, personalization, research\n" in prompt


def test_a_plan_prompt_carries_the_context_and_the_iteration() -> None:
    prompt = user_prompt(context={"segment": "trial", "brand": "Orbit"}, iteration=2)

    assert 'Context:\n<data source="context">\n{"brand": "Orbit", "segment": "trial"}\n</data>' in (
        prompt
    )
    assert "Iteration: 2" in prompt


def test_only_a_revision_carries_the_critics_feedback() -> None:
    assert "Critic feedback" not in user_prompt()
    assert (
        'Critic feedback to address in this revision:\n<data source="critic">\nShorter.\n</data>'
    ) in user_prompt(feedback="Shorter.", iteration=2)


def test_a_plan_is_read_from_json_wrapped_in_prose() -> None:
    text = (
        "Sure! Here is the plan:\n```json\n"
        '{"subtasks": [{"key": "facts", "agent": "research", "description": "Find facts"}]}\n'
        "```"
    )

    assert coordinator.read_plan(text) == [
        PlannedSubtask("facts", AgentType.RESEARCH, "Find facts", ())
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("I cannot plan this", "the coordinator's plan is not JSON"),
        ('{"subtasks": [}', "the coordinator's plan is not JSON"),
        ('{"subtasks": "all of them"}', "a plan is a list of subtasks"),
    ],
)
def test_an_answer_that_is_no_plan_is_rejected(text: str, message: str) -> None:
    with pytest.raises(InvalidPlan, match=message):
        coordinator.read_plan(text)


def test_a_synthesis_prompt_lists_every_contribution_and_the_feedback() -> None:
    task_id = uuid4()
    steps = [
        StepRecord(
            task_id,
            1,
            key,
            agent,
            f"agent.{agent}",
            StepStatus.COMPLETED,
            output,
            datetime(2030, 1, 1, tzinfo=UTC),
        )
        for key, agent, output in [
            ("facts", AgentType.RESEARCH, "Ships in March"),
            ("copy", AgentType.CONTENT, "Meet Orbit"),
        ]
    ]

    system, user = coordinator.synthesis_messages(
        task="Launch Orbit", steps=steps, feedback="Shorter."
    )

    assert "Answer format: synthesis" in system.content
    assert user.content.splitlines() == [
        "Task: Launch Orbit",
        "Merge these specialist results into one answer:",
        '<data source="agents">',
        "- [research:facts] Ships in March",
        "- [content:copy] Meet Orbit",
        "</data>",
        "Address the critic's feedback:",
        '<data source="critic">',
        "Shorter.",
        "</data>",
    ]
