from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from uuid import uuid4

import pytest

# Through litellm_models, which points litellm at its packaged cost map before it loads, so
# that importing litellm does not reach for the internet.
from meshcore.adapters import litellm_models  # noqa: F401
from meshcore.adapters.offline_model import LABEL, answer
from meshcore.agents import BUILTINS, coordinator, critic, profile_for
from meshcore.agents.profile import fenced
from meshcore.domain.network import SPECIALISTS, AgentType
from meshcore.domain.plan import validate_plan
from meshcore.domain.task import StepRecord, StepStatus
from meshcore.ports import Message
from tests.task_descriptions import TASK_DESCRIPTIONS as TASKS

TASK = "Write the launch email for Orbit"
NOW = datetime(2026, 5, 1, tzinfo=UTC)


def ask(messages: list[Message]) -> str:
    system = "\n".join(m.content for m in messages if m.role == "system")
    user = "\n".join(m.content for m in messages if m.role == "user")
    return answer(system, user)


def plan_for(agents: set[AgentType], feedback: str | None = None) -> str:
    return ask(
        coordinator.plan_messages(
            task=TASK, context={}, agents=[BUILTINS[a] for a in agents], iteration=1,
            feedback=feedback,
        )
    )


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
    assert verdict.feedback.startswith(LABEL)


def team_answer(task: str, feedback: str | None = None) -> str:
    """The offline synthesis of every specialist's offline draft, as a run would make it."""
    steps = []
    for agent in sorted(SPECIALISTS):
        draft = ask(
            profile_for(agent).step_messages(
                task=task,
                context={"segment": "trial users"},
                subtask=f"The {agent} angle on: {task}.",
                dependencies=[],
                memory=[],
            )
        )
        steps.append(
            StepRecord(uuid4(), 1, agent.value, agent, "q", StepStatus.COMPLETED, draft, NOW)
        )
    return ask(coordinator.synthesis_messages(task=task, steps=steps, feedback=feedback))


def verdict_of(task: str, answer_text: str, iteration: int = 1) -> critic.Verdict:
    reply = ask(critic.review_messages(task=task, answer=answer_text, iteration=iteration))
    return critic.read_verdict(reply)


def test_with_the_default_threshold_some_first_drafts_pass_and_others_need_a_revision() -> None:
    scores = [verdict_of(task, team_answer(task)).score for task in TASKS]

    assert any(s >= 0.8 for s in scores), scores
    assert any(s < 0.8 for s in scores), scores
    assert all(0.5 <= s < 1.0 for s in scores), scores


def test_the_same_answer_scores_higher_on_each_revision() -> None:
    for task in TASKS:
        answer_text = team_answer(task)
        scores = [verdict_of(task, answer_text, i).score for i in (1, 2, 3)]
        assert scores == sorted(scores) and scores[0] < scores[2], f"{task}: {scores}"


def test_an_answer_that_merges_more_parts_scores_higher() -> None:
    full = team_answer(TASK)
    two_parts = "\n".join(full.splitlines()[:3])

    assert verdict_of(TASK, full).score > verdict_of(TASK, two_parts).score
    assert "Only 2 specialist part(s)" in verdict_of(TASK, two_parts).feedback


def test_feedback_names_a_merged_agent_and_quotes_the_task() -> None:
    answer_text = team_answer("Draft a pricing page for the Pro plan")

    feedback = verdict_of("Draft a pricing page for the Pro plan", answer_text).feedback

    named = [agent.value for agent in SPECIALISTS if f"The {agent.value} part" in feedback]
    assert len(named) == 1, feedback
    assert f"- {named[0]}:" in answer_text
    assert '"Draft a pricing page for the Pro plan"' in feedback


def test_different_tasks_get_different_feedback() -> None:
    feedback = {verdict_of(task, team_answer(task)).feedback for task in TASKS}

    assert len(feedback) == len(TASKS)
    weakest = {f.split(" part ")[0] for f in feedback}
    assert len(weakest) > 1, "every task blames the same agent"


def test_an_answer_without_parts_is_told_to_show_them() -> None:
    feedback = verdict_of(TASK, "Dear customer").feedback

    assert "no specialist's part" in feedback and TASK in feedback


def test_a_synthesis_names_and_quotes_each_specialists_part() -> None:
    text = team_answer(TASK)

    lines = text.splitlines()
    assert lines[0].startswith(f"{LABEL} Synthesis of 5 contribution(s) from analytics, ")
    quoted = [line for line in lines if line.startswith("- ")]
    assert [q[2:].split(":")[0] for q in quoted] == sorted(a.value for a in SPECIALISTS)
    content = next(q for q in quoted if q.startswith("- content:"))
    assert "'Write the launch email for Orbit'" in content and "call to action" in content
    assert LABEL not in "\n".join(quoted)


def test_a_revised_synthesis_says_which_feedback_it_addresses() -> None:
    text = team_answer(TASK, feedback=f"{LABEL} Cut the second paragraph.")

    assert "Addresses the critic's feedback: Cut the second paragraph." in text


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
            task=TASK, context={}, agents=BUILTINS.values(), iteration=1, feedback=None
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
        + fenced("agents", "- [research] Orbit ships in March")
        + "\nShared memory:\n"
        + fenced("memory", "- (fact, 0.90) a\n- (fact, 0.80) b"),
    )

    assert text.startswith(f"{LABEL} Draft by the content specialist of a team for: Write the")
    assert "Building on: Orbit ships in March" in text
    assert "Drew on 3 shared memory item(s)." in text  # the work it builds on is read too


def test_a_draft_counts_memory_items_that_run_over_several_lines() -> None:
    text = answer(
        "You are the content specialist of a team.\nAnswer format: draft",
        "Task: t\nYour subtask: s\nWork you build on:\n"
        + fenced("agents", "- [research] line one\n  line two")
        + "\nShared memory:\n"
        + fenced("memory", "- (fact, 0.90) a\n  more of a\n  \n- (fact, 0.80) b\n- (fact, 0.70) c"),
    )

    assert "Drew on 4 shared memory item(s)." in text


def test_a_synthesis_counts_its_contributions_and_names_their_agents() -> None:
    text = answer(
        "Answer format: synthesis",
        f"Task: {TASK}\nMerge:\n"
        + fenced(
            "agents", "- [content:copy] words\n  more\n- [design:look] layout\n- [content:x] y"
        ),
    )

    assert text.startswith(f"{LABEL} Synthesis of 3 contribution(s) from content, design for:")
    assert '- content (copy): "words"' in text
    assert re.search(r"Ref [0-9a-f]{8}\.$", text)


def test_a_plan_answer_is_json_with_a_note_saying_it_is_offline() -> None:
    data = json.loads(plan_for({AgentType.RESEARCH}))

    assert LABEL in data["note"]
    assert data["subtasks"][0]["key"] == "research"
