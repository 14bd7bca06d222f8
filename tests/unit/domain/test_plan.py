from __future__ import annotations

import pytest

from meshcore.domain.errors import InvalidPlan
from meshcore.domain.network import SPECIALISTS, AgentType
from meshcore.domain.plan import (
    MAX_SUBTASKS,
    PlannedSubtask,
    parse_plan,
    plan_to_json,
    validate_plan,
)

ALL = frozenset(AgentType)


def item(key: str, agent: str = "research", *depends_on: str) -> dict[str, object]:
    return {"key": key, "agent": agent, "description": f"do {key}", "depends_on": list(depends_on)}


def sub(key: str, agent: AgentType = AgentType.RESEARCH, *depends_on: str) -> PlannedSubtask:
    return PlannedSubtask(key, agent, f"do {key}", tuple(depends_on))


def keys_by_wave(subtasks: list[PlannedSubtask]) -> list[list[str]]:
    return [[s.key for s in wave] for wave in validate_plan(subtasks, ALL).waves]


def test_a_plan_reads_from_an_object_or_a_bare_list() -> None:
    raw = [
        {"key": "facts", "agent": "research", "description": "  find facts  "},
        item("copy", "content", "facts"),
    ]

    from_list = parse_plan(raw)
    from_object = parse_plan({"subtasks": raw, "note": "ignored"})

    assert from_list == from_object
    assert from_list == [
        PlannedSubtask("facts", AgentType.RESEARCH, "find facts", ()),
        PlannedSubtask("copy", AgentType.CONTENT, "do copy", ("facts",)),
    ]


def test_waves_put_each_subtask_after_everything_it_depends_on() -> None:
    plan = [
        sub("email", AgentType.CONTENT, "facts", "segment"),
        sub("facts"),
        sub("segment", AgentType.PERSONALIZATION),
        sub("layout", AgentType.DESIGN, "email"),
        sub("metrics", AgentType.ANALYTICS, "facts"),
    ]

    assert keys_by_wave(plan) == [["facts", "segment"], ["email", "metrics"], ["layout"]]


def test_independent_subtasks_share_one_wave_in_plan_order() -> None:
    plan = [sub("b", AgentType.DESIGN), sub("a"), sub("c", AgentType.CONTENT)]

    validated = validate_plan(plan, ALL)

    assert keys_by_wave(plan) == [["b", "a", "c"]]
    assert validated.subtasks == tuple(plan)
    assert validated.wave_of("c") == 0


def test_wave_of_names_the_wave_a_subtask_runs_in() -> None:
    validated = validate_plan([sub("facts"), sub("copy", AgentType.CONTENT, "facts")], ALL)

    assert (validated.wave_of("facts"), validated.wave_of("copy")) == (0, 1)


def test_a_plan_survives_a_round_trip_through_json() -> None:
    plan = [sub("facts"), sub("copy", AgentType.CONTENT, "facts")]

    assert parse_plan(plan_to_json(plan)) == plan


def test_a_cycle_is_rejected_naming_its_subtasks() -> None:
    plan = [
        sub("a", AgentType.CONTENT, "b"),
        sub("b", AgentType.DESIGN, "a"),
        sub("free"),
    ]

    with pytest.raises(InvalidPlan, match=r"cycle among: a, b$"):
        validate_plan(plan, ALL)


def test_a_longer_cycle_is_rejected() -> None:
    plan = [
        sub("a", AgentType.CONTENT, "c"),
        sub("b", AgentType.DESIGN, "a"),
        sub("c", AgentType.RESEARCH, "b"),
    ]

    with pytest.raises(InvalidPlan, match="cycle among: a, b, c"):
        validate_plan(plan, ALL)


def test_a_subtask_that_depends_on_itself_is_rejected() -> None:
    with pytest.raises(InvalidPlan, match="subtask 'a' depends on itself"):
        validate_plan([sub("a", AgentType.RESEARCH, "a")], ALL)


def test_a_dependency_on_an_unknown_key_is_rejected() -> None:
    with pytest.raises(InvalidPlan, match="'copy' depends on unknown subtask 'facts'"):
        validate_plan([sub("copy", AgentType.CONTENT, "facts")], ALL)


def test_a_key_used_twice_is_rejected() -> None:
    with pytest.raises(InvalidPlan, match="key 'facts' is used twice"):
        validate_plan([sub("facts"), sub("facts", AgentType.CONTENT)], ALL)


def test_an_agent_type_that_is_no_name_is_rejected_with_its_field() -> None:
    with pytest.raises(InvalidPlan, match="unknown agent type 'Astro Loger'") as raised:
        parse_plan([item("facts"), item("stars", "Astro Loger")])

    assert raised.value.field == "plan.1.agent"


def test_an_agent_the_network_lacks_is_rejected() -> None:
    available = ALL - {AgentType.DESIGN}

    with pytest.raises(InvalidPlan, match="'layout': the network has no design agent"):
        validate_plan([sub("facts"), sub("layout", AgentType.DESIGN)], available)


@pytest.mark.parametrize("agent", [AgentType.COORDINATOR, AgentType.CRITIC])
def test_the_coordinator_and_the_critic_take_no_subtasks(agent: AgentType) -> None:
    with pytest.raises(InvalidPlan, match=f"a {agent} agent does not take subtasks"):
        validate_plan([sub("x", agent)], ALL)


def test_an_empty_plan_is_rejected() -> None:
    with pytest.raises(InvalidPlan, match="at least one subtask"):
        validate_plan([], ALL)


def test_a_plan_may_have_the_maximum_number_of_subtasks_but_not_one_more() -> None:
    most = [sub(f"s{i}") for i in range(MAX_SUBTASKS)]

    assert len(validate_plan(most, ALL).subtasks) == MAX_SUBTASKS
    with pytest.raises(InvalidPlan, match=f"at most {MAX_SUBTASKS} subtasks"):
        validate_plan([*most, sub("one-more")], ALL)


def test_only_specialists_can_be_planned() -> None:
    assert frozenset(AgentType) - SPECIALISTS == {AgentType.COORDINATOR, AgentType.CRITIC}


@pytest.mark.parametrize(
    ("raw", "field", "message"),
    [
        ("research everything", "plan", "a plan is a list of subtasks"),
        ({"steps": []}, "plan", "a plan is a list of subtasks"),
        (["facts"], "plan.0", "a subtask is an object"),
        ([{**item("facts"), "key": "Facts!"}], "plan.0.key", "key must match"),
        ([{**item("facts"), "key": "@plan"}], "plan.0.key", "key must match"),
        ([{**item("facts"), "key": "k" * 65}], "plan.0.key", "key must match"),
        ([{**item("facts"), "key": 7}], "plan.0.key", "key must match"),
        ([{**item("facts"), "description": "  "}], "plan.0.description", "non-empty"),
        ([{**item("facts"), "description": None}], "plan.0.description", "non-empty"),
        ([{**item("facts"), "depends_on": "x"}], "plan.0.depends_on", "list of keys"),
        ([{**item("facts"), "depends_on": [1]}], "plan.0.depends_on", "list of keys"),
    ],
)
def test_a_malformed_plan_is_rejected_naming_the_bad_field(
    raw: object, field: str, message: str
) -> None:
    with pytest.raises(InvalidPlan, match=message) as raised:
        parse_plan(raw)

    assert raised.value.field == field
