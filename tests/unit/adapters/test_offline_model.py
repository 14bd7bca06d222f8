from __future__ import annotations

import json
import re

import pytest

# Through litellm_models, which points litellm at its packaged cost map before it loads, so
# that importing litellm does not reach for the internet.
from meshcore.adapters import litellm_models  # noqa: F401
from meshcore.adapters.offline_model import LABEL, answer
from meshcore.agents import coordinator, critic, profile_for
from meshcore.domain.network import SPECIALISTS, AgentType
from meshcore.domain.plan import validate_plan
from meshcore.ports import Message

TASK = "Write the launch email for Orbit"


def ask(messages: list[Message]) -> str:
    system = "\n".join(m.content for m in messages if m.role == "system")
    user = "\n".join(m.content for m in messages if m.role == "user")
    return answer(system, user)


def plan_for(agents: set[AgentType], feedback: str | None = None) -> str:
    return ask(
        coordinator.plan_messages(
            task=TASK, context={}, agents=agents, iteration=1, feedback=feedback
        )
    )


def score(answer_text: str, iteration: int) -> float:
    reply = ask(critic.review_messages(task=TASK, answer=answer_text, iteration=iteration))
    return critic.read_verdict(reply).score


def test_a_plan_answer_is_a_valid_plan_over_the_available_specialists() -> None:
    agents = {AgentType.COORDINATOR, AgentType.CRITIC, AgentType.RESEARCH, AgentType.CONTENT}

    planned = coordinator.read_plan(plan_for(agents))

    plan = validate_plan(planned, agents)
    assert sorted(s.agent_type for s in plan.subtasks) == [AgentType.CONTENT, AgentType.RESEARCH]
    assert all(TASK in s.description for s in plan.subtasks)


def test_a_plan_answer_for_the_default_team_covers_every_specialist() -> None:
    planned = coordinator.read_plan(plan_for(set(AgentType)))

    assert {s.agent_type for s in validate_plan(planned, set(AgentType)).subtasks} == SPECIALISTS


def test_a_revised_plan_carries_the_critics_feedback() -> None:
    planned = coordinator.read_plan(plan_for({AgentType.DESIGN}, feedback="Use the brand blue."))

    assert planned[0].description.endswith("Revise to address: Use the brand blue.")


def test_a_verdict_is_a_score_between_zero_and_one_with_feedback() -> None:
    verdict = critic.read_verdict(
        ask(critic.review_messages(task=TASK, answer="Dear customer...", iteration=1))
    )

    assert 0.0 <= verdict.score <= 1.0
    assert verdict.feedback


@pytest.mark.parametrize("iteration", [1, 2, 3, 4, 5])
def test_verdict_scores_sit_in_a_band_that_rises_with_the_iteration(iteration: int) -> None:
    scores = [score(f"draft number {n}", iteration) for n in range(40)]

    low = min(round(0.55 + 0.1 * (iteration - 1), 2), 0.95)
    high = min(round(low + 0.2, 2), 0.95)
    assert all(low <= s <= high for s in scores), scores
    assert len(set(scores)) > 1 or low == 0.95


def test_the_average_verdict_rises_with_each_revision() -> None:
    averages = [
        sum(score(f"draft number {n}", iteration) for n in range(40)) / 40
        for iteration in (1, 2, 3)
    ]

    assert averages[0] < averages[1] < averages[2]


def test_the_same_answer_scores_higher_on_each_revision() -> None:
    for n in range(20):
        scores = [score(f"draft number {n}", iteration) for iteration in (1, 2, 3)]
        assert scores == sorted(scores), f"draft number {n}: {scores}"


def draft_messages() -> list[Message]:
    return profile_for(AgentType.CONTENT).step_messages(
        task=TASK,
        context={"segment": "trial"},
        subtask="Write the subject line",
        dependencies=[],
        memory=[],
    )


def synthesis_messages() -> list[Message]:
    return coordinator.synthesis_messages(task=TASK, steps=[], feedback=None)


@pytest.mark.parametrize(
    "messages",
    [
        coordinator.plan_messages(
            task=TASK, context={}, agents=set(AgentType), iteration=1, feedback=None
        ),
        critic.review_messages(task=TASK, answer="Dear customer", iteration=1),
        draft_messages(),
        synthesis_messages(),
        [Message("user", "no format line at all")],
    ],
    ids=["plan", "verdict", "draft", "synthesis", "no-format"],
)
def test_every_answer_says_it_is_not_an_ai(messages: list[Message]) -> None:
    assert LABEL in ask(messages)


def test_the_same_prompt_gets_the_same_answer() -> None:
    messages = draft_messages()

    assert ask(messages) == ask(messages)
    assert ask(messages) != answer(messages[0].content, messages[1].content + " (changed)")


def test_a_draft_names_its_subtask_and_what_it_built_on() -> None:
    text = answer(
        "You are the content specialist of a team.\nAnswer format: draft",
        "Task: t\nYour subtask: Write the subject line\nWork you build on:\n"
        "- [research] Orbit ships in March\nShared memory:\n- (fact, 0.90) a\n- (fact, 0.80) b",
    )

    assert text.startswith(f"{LABEL} Draft by the content specialist of a team for: Write the")
    assert "Building on: Orbit ships in March" in text
    assert "Drew on 2 shared memory item(s)." in text


def test_a_synthesis_counts_its_contributions_and_names_their_agents() -> None:
    text = answer(
        "Answer format: synthesis",
        f"Task: {TASK}\nMerge:\n- [content:copy] words\n- [design:look] layout\n- [content:x] y",
    )

    assert text.startswith(f"{LABEL} Synthesis of 3 contribution(s) from content, design for:")
    assert re.search(r"Ref [0-9a-f]{8}\.$", text)


def test_a_plan_answer_is_json_with_a_note_saying_it_is_offline() -> None:
    data = json.loads(plan_for({AgentType.RESEARCH}))

    assert LABEL in data["note"]
    assert data["subtasks"][0]["key"] == "research"
