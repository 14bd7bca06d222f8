"""Bad request bodies, by the kind of mistake: (resource, changes to a valid body, field, problem).

`changes` are merged into the resource's valid body; ABSENT leaves a key out.
"""

from __future__ import annotations

from typing import Any

import pytest

ABSENT = object()
NAN, INFINITY = float("nan"), float("inf")
RANGE = "greater than or equal to"
VALID: dict[str, dict[str, Any]] = {
    "networks": {"name": "net"},
    "agents": {"type": "content"},
    # auto_process stays true: a rejected task must not reach the queue either.
    "tasks": {"description": "Draft the launch email"},
    "memory": {"type": "fact", "content": "Mesh ships in May"},
}


def subtask(**changes: Any) -> dict[str, Any]:
    """A valid subtask of a client's plan, with `changes` applied."""
    valid = {"key": "copy", "agent": "content", "description": "Write it"}
    return {k: v for k, v in {**valid, **changes}.items() if v is not ABSENT}


def body_of(resource: str, changes: dict[str, Any]) -> dict[str, Any]:
    """The resource's valid body with `changes` applied."""
    return {k: v for k, v in {**VALID[resource], **changes}.items() if v is not ABSENT}


def case(name: str, resource: str, changes: dict[str, Any], field: str, problem: str) -> Any:
    return pytest.param(resource, changes, field, problem, id=f"{resource}-{name}")


def bug(reason: str) -> pytest.MarkDecorator:
    """Marks a test of a known bug: it must fail until the bug is fixed."""
    return pytest.mark.xfail(reason=f"BUG: {reason}", strict=True)


def kinds(bugs: dict[str, str] | None = None, **groups: list[Any]) -> list[Any]:
    """The groups' cases in one list, ids led by the group's kind; a known bug's group xfails."""
    params = []
    for kind, cases in groups.items():
        reason = (bugs or {}).get(kind)
        marks = [bug(reason)] if reason else []
        kind_id = kind.replace("_", "-")
        params += [
            pytest.param(*p.values, id=f"{kind_id}:{p.id}", marks=[*p.marks, *marks]) for p in cases
        ]
    return params


MISSING = [
    case("no-name", "networks", {"name": ABSENT}, "name", "Missing data"),
    case("no-type", "agents", {"type": ABSENT}, "type", "Missing data"),
    case("no-description", "tasks", {"description": ABSENT}, "description", "Missing data"),
    case("no-plan-key", "tasks", {"plan": [subtask(key=ABSENT)]}, "plan.0.key", "Missing"),
    case("no-type", "memory", {"type": ABSENT}, "type", "Missing data"),
    case("no-content", "memory", {"content": ABSENT}, "content", "Missing data"),
]
WRONG_TYPES = [
    case("name-number", "networks", {"name": 5}, "name", "Not a valid string"),
    case("name-null", "networks", {"name": None}, "name", "may not be null"),
    case("description-list", "networks", {"description": ["x"]}, "description", "valid string"),
    case("config-string", "networks", {"config": "fast"}, "config", "Invalid input type"),
    case(
        "iterations-bool",
        "networks",
        {"config": {"max_iterations": True}},
        "config.max_iterations",
        "Not a valid integer",
    ),
    case(
        "threshold-word",
        "networks",
        {"config": {"quality_threshold": "high"}},
        "config.quality_threshold",
        "Not a valid number",
    ),
    case(
        "chain-string", "networks", {"config": {"model_chain": "gpt"}}, "config.model_chain", "list"
    ),
    case("agents-string", "networks", {"agents": "content"}, "agents", "Not a valid list"),
    case("agent-string", "networks", {"agents": ["content"]}, "agents.0", "Invalid input type"),
    case("name-number", "agents", {"name": 7}, "name", "Not a valid string"),
    case("model-string", "agents", {"model": "gpt-4o"}, "model", "Invalid input type"),
    case(
        "temperature-word",
        "agents",
        {"model": {"temperature": "warm"}},
        "model.temperature",
        "number",
    ),
    case("capabilities-string", "agents", {"capabilities": "copy"}, "capabilities", "valid list"),
    case("capability-number", "agents", {"capabilities": [1]}, "capabilities.0", "valid string"),
    case("description-number", "tasks", {"description": 42}, "description", "Not a valid string"),
    case("context-list", "tasks", {"context": ["a"]}, "context", "Not a valid mapping"),
    case("priority-number", "tasks", {"priority": 1}, "priority", "Must be one of"),
    case("auto-process-word", "tasks", {"auto_process": "maybe"}, "auto_process", "valid boolean"),
    case("plan-object", "tasks", {"plan": {"key": "a"}}, "plan", "Not a valid list"),
    case(
        "depends-on-string",
        "tasks",
        {"plan": [subtask(depends_on="research")]},
        "plan.0.depends_on",
        "Not a valid list",
    ),
    case("type-number", "memory", {"type": 3}, "type", "Must be one of"),
    case("content-list", "memory", {"content": ["x"]}, "content", "Not a valid string"),
    case("confidence-word", "memory", {"confidence": "sure"}, "confidence", "Not a valid number"),
    case("metadata-string", "memory", {"metadata": "x"}, "metadata", "Not a valid mapping"),
]
UNKNOWN_FIELDS = [
    case("top", "networks", {"colour": "red"}, "colour", "Unknown field"),
    case("config", "networks", {"config": {"speed": 11}}, "config.speed", "Unknown field"),
    case(
        "agent",
        "networks",
        {"agents": [{"type": "content", "mood": 1}]},
        "agents.0.mood",
        "Unknown",
    ),
    case("top", "agents", {"role": "writer"}, "role", "Unknown field"),
    case("model", "agents", {"model": {"top_p": 0.9}}, "model.top_p", "Unknown field"),
    case("top", "tasks", {"deadline": "soon"}, "deadline", "Unknown field"),
    case("subtask", "tasks", {"plan": [subtask(owner="me")]}, "plan.0.owner", "Unknown field"),
    case("top", "memory", {"source": "me"}, "source", "Unknown field"),
]
OUT_OF_RANGE = [
    case(
        "iterations-0",
        "networks",
        {"config": {"max_iterations": 0}},
        "config.max_iterations",
        RANGE,
    ),
    case(
        "iterations-11",
        "networks",
        {"config": {"max_iterations": 11}},
        "config.max_iterations",
        RANGE,
    ),
    case(
        "iterations-huge",
        "networks",
        {"config": {"max_iterations": 10**30}},
        "config.max_iterations",
        RANGE,
    ),
    case(
        "timeout-0", "networks", {"config": {"timeout_seconds": 0}}, "config.timeout_seconds", RANGE
    ),
    case(
        "timeout-day+1",
        "networks",
        {"config": {"timeout_seconds": 86_401}},
        "config.timeout_seconds",
        RANGE,
    ),
    case(
        "threshold-neg",
        "networks",
        {"config": {"quality_threshold": -0.1}},
        "config.quality_threshold",
        RANGE,
    ),
    case(
        "threshold-1.5",
        "networks",
        {"config": {"quality_threshold": 1.5}},
        "config.quality_threshold",
        RANGE,
    ),
    case(
        "threshold-nan",
        "networks",
        {"config": {"quality_threshold": NAN}},
        "config.quality_threshold",
        "nan or infinity",
    ),
    case("no-agents", "networks", {"agents": []}, "agents", "Length must be between 1 and 32"),
    case("33-agents", "networks", {"agents": [{"type": "content"}] * 33}, "agents", "Length"),
    case(
        "empty-chain", "networks", {"config": {"model_chain": []}}, "config.model_chain", "Length"
    ),
    case(
        "11-models",
        "networks",
        {"config": {"model_chain": ["m"] * 11}},
        "config.model_chain",
        "Length",
    ),
    case("temperature-neg", "agents", {"model": {"temperature": -0.5}}, "model.temperature", RANGE),
    case("temperature-2.1", "agents", {"model": {"temperature": 2.1}}, "model.temperature", RANGE),
    case(
        "temperature-inf",
        "agents",
        {"model": {"temperature": INFINITY}},
        "model.temperature",
        "infinity",
    ),
    case("tokens-0", "agents", {"model": {"max_tokens": 0}}, "model.max_tokens", RANGE),
    case("tokens-200001", "agents", {"model": {"max_tokens": 200_001}}, "model.max_tokens", RANGE),
    case(
        "33-capabilities",
        "agents",
        {"capabilities": ["c"] * 33},
        "capabilities",
        "maximum length 32",
    ),
    case("empty-plan", "tasks", {"plan": []}, "plan", "Length must be between 1 and 32"),
    case(
        "33-subtasks",
        "tasks",
        {"plan": [subtask(key=f"s{i}") for i in range(33)]},
        "plan",
        "Length",
    ),
    case("confidence-neg", "memory", {"confidence": -0.01}, "confidence", RANGE),
    case("confidence-1.01", "memory", {"confidence": 1.01}, "confidence", RANGE),
    case("confidence-nan", "memory", {"confidence": NAN}, "confidence", "nan or infinity"),
]
STRINGS = [
    case("empty-name", "networks", {"name": ""}, "name", "Length must be between 1 and 200"),
    case("long-name", "networks", {"name": "n" * 201}, "name", "Length must be between 1 and 200"),
    case(
        "long-description",
        "networks",
        {"description": "d" * 2001},
        "description",
        "maximum length 2000",
    ),
    case(
        "empty-model",
        "networks",
        {"config": {"model_chain": [""]}},
        "config.model_chain.0",
        "Length",
    ),
    case(
        "long-model",
        "networks",
        {"config": {"model_chain": ["m" * 201]}},
        "config.model_chain.0",
        "Length",
    ),
    case("empty-name", "agents", {"name": ""}, "name", "Length must be between 1 and 200"),
    case("long-name", "agents", {"name": "a" * 201}, "name", "Length must be between 1 and 200"),
    case("empty-capability", "agents", {"capabilities": [""]}, "capabilities.0", "Length"),
    case(
        "long-capability",
        "agents",
        {"capabilities": ["c" * 65]},
        "capabilities.0",
        "between 1 and 64",
    ),
    case("empty-model", "agents", {"model": {"chain": [""]}}, "model.chain.0", "Length"),
    case("empty-description", "tasks", {"description": ""}, "description", "Length"),
    case(
        "blank-description", "tasks", {"description": "  \n "}, "description", "must not be empty"
    ),
    case("long-description", "tasks", {"description": "d" * 10_001}, "description", "10000"),
    case("empty-context-key", "tasks", {"context": {"": 1}}, "context", "Length"),
    case("empty-plan-key", "tasks", {"plan": [subtask(key="")]}, "plan.0.key", "must be lowercase"),
    case("long-plan-key", "tasks", {"plan": [subtask(key="k" * 65)]}, "plan.0.key", "at most 64"),
    case(
        "empty-subtask",
        "tasks",
        {"plan": [subtask(description="")]},
        "plan.0.description",
        "Length",
    ),
    case(
        "long-subtask",
        "tasks",
        {"plan": [subtask(description="d" * 2001)]},
        "plan.0.description",
        "2000",
    ),
    case(
        "empty-content", "memory", {"content": ""}, "content", "Length must be between 1 and 20000"
    ),
    case("blank-content", "memory", {"content": "\t "}, "content", "must not be empty"),
    case("long-content", "memory", {"content": "c" * 20_001}, "content", "between 1 and 20000"),
    case("empty-metadata-key", "memory", {"metadata": {"": "x"}}, "metadata", "Length"),
]
UNKNOWN_TYPES = [
    case(
        "agent-type",
        "networks",
        {"agents": [{"type": "wizard"}]},
        "agents.0.type",
        "no agent type 'wizard' in the catalog",
    ),
    case("agent-type", "agents", {"type": "wizard"}, "type", "no agent type 'wizard'"),
    case("agent-type-case", "agents", {"type": "Content"}, "type", "an agent type's name"),
    case(
        "subtask-agent",
        "tasks",
        {"plan": [subtask(agent="wizard")]},
        "plan",
        "the network has no wizard agent",
    ),
    case(
        "priority", "tasks", {"priority": "urgent"}, "priority", "Must be one of: low, normal, high"
    ),
    case("memory-type", "memory", {"type": "rumour"}, "type", "Must be one of: fact, context"),
    case("memory-type-empty", "memory", {"type": ""}, "type", "Must be one of"),
]
NUL_CHARACTERS = [
    case("name", "networks", {"name": "a\x00b"}, "name", "NUL"),
    case("description", "networks", {"description": "\x00"}, "description", "NUL"),
    case("name", "agents", {"name": "a\x00b"}, "name", "NUL"),
    case("capability", "agents", {"capabilities": ["a\x00"]}, "capabilities.0", "NUL"),
    case("description", "tasks", {"description": "d\x00"}, "description", "NUL"),
    case("context", "tasks", {"context": {"k": "v\x00"}}, "context", "NUL"),
    case("content", "memory", {"content": "c\x00"}, "content", "NUL"),
    case("metadata", "memory", {"metadata": {"k": "\x00"}}, "metadata", "NUL"),
]
NOT_QUITE_INTEGERS = [
    case(
        "iterations-2.5",
        "networks",
        {"config": {"max_iterations": 2.5}},
        "config.max_iterations",
        "integer",
    ),
    case(
        "timeout-30.9",
        "networks",
        {"config": {"timeout_seconds": 30.9}},
        "config.timeout_seconds",
        "integer",
    ),
    case(
        "iterations-text",
        "networks",
        {"config": {"max_iterations": "3"}},
        "config.max_iterations",
        "integer",
    ),
    case("tokens-100.7", "agents", {"model": {"max_tokens": 100.7}}, "model.max_tokens", "integer"),
]
BLANK_NAMES = [
    case("blank-name", "networks", {"name": "   "}, "name", "empty"),
    case("blank-name", "agents", {"name": " \t "}, "name", "empty"),
]
# Webargs names list items by index; the message must too, the first (0) included.
FIRST_ITEMS = [
    case("agent-type", "networks", {"agents": [{"type": "Wiz"}]}, "agents.0.type", "type's name"),
    case("capability", "agents", {"capabilities": [""]}, "capabilities.0", "Length"),
    case("subtask-key", "tasks", {"plan": [subtask(key="BAD KEY")]}, "plan.0.key", "lowercase"),
]

# Plans the domain refuses (InvalidPlan): the error names the plan, the message the subtasks.
PLANS = [
    pytest.param(
        [subtask(key="a", depends_on=["b"]), subtask(key="b", depends_on=["a"])],
        "dependencies form a cycle among: a, b",
        id="cycle-of-two",
    ),
    pytest.param(
        [
            subtask(key="a", depends_on=["c"]),
            subtask(key="b", agent="design", depends_on=["a"]),
            subtask(key="c", agent="research", depends_on=["b"]),
        ],
        "dependencies form a cycle among: a, b, c",
        id="cycle-of-three",
    ),
    pytest.param(
        [
            subtask(key="root"),
            subtask(key="x", depends_on=["root", "y"]),
            subtask(key="y", depends_on=["root", "x"]),
        ],
        "dependencies form a cycle among: x, y",
        id="cycle-after-a-runnable-wave",
    ),
    pytest.param(
        [subtask(key="a", depends_on=["a"])], "'a' depends on itself", id="self-dependency"
    ),
    pytest.param(
        [subtask(key="a", depends_on=["ghost"])],
        "depends on unknown subtask 'ghost'",
        id="unknown-dependency",
    ),
    pytest.param(
        [subtask(key="a"), subtask(key="a", agent="design")],
        "'a' is used twice",
        id="duplicate-key",
    ),
    pytest.param(
        [subtask(agent="coordinator")],
        "a coordinator agent does not take subtasks",
        id="coordinator-subtask",
    ),
    pytest.param(
        [subtask(agent="critic")], "a critic agent does not take subtasks", id="critic-subtask"
    ),
]

BAD_BODIES = kinds(
    missing=MISSING,
    wrong_type=WRONG_TYPES,
    unknown_field=UNKNOWN_FIELDS,
    out_of_range=OUT_OF_RANGE,
    empty_or_oversized=STRINGS,
    unknown_type=UNKNOWN_TYPES,
    nul_character=NUL_CHARACTERS,
    not_quite_integer=NOT_QUITE_INTEGERS,
    blank_name=BLANK_NAMES,
)
