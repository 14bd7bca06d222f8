"""A specialist whose type has MCP tools, on the fakes: the step loop, and exactly-once calls."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pytest

from meshcore.adapters.redis_activity import RedisAgentActivity
from meshcore.domain.agent_types import AgentTypeDef, ToolServer
from meshcore.domain.network import NetworkConfig
from meshcore.domain.task import Priority, StepRecord, StepStatus, Task, TaskStatus
from meshcore.ports import ToolCallRecord, ToolCallStatus, ToolInfo, ToolResult
from meshcore.services.agent_steps import StepRunner
from meshcore.services.networks import AgentSpec
from meshcore.services.step_log import Skipped
from tests.fakes import FakeMesh

URL = "https://tools.example/mcp"
SUBTASK = "Find the facts"
LOOKUP = ToolInfo(
    server=URL,
    name="lookup",
    description="Look up a fact about the query.",
    input_schema={
        "type": "object",
        "properties": {"query": {"type": "string"}},
        "required": ["query"],
    },
    idempotent=True,
)
SEND = ToolInfo(
    server=URL,
    name="send_email",
    description="Send an email.",
    input_schema={
        "type": "object",
        "properties": {"to": {"type": "string"}, "subject": {"type": "string"}},
        "required": ["to", "subject"],
    },
    idempotent=False,
)


class FakeTools:
    """The ToolClient port: two tools, and every call it was asked to make."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, object]]] = []

    def list_tools(self, url: str, headers: Mapping[str, str] | None = None) -> list[ToolInfo]:
        return [LOOKUP, SEND]

    def call_tool(
        self,
        url: str,
        name: str,
        arguments: Mapping[str, Any],
        headers: Mapping[str, str] | None = None,
    ) -> ToolResult:
        self.calls.append((name, dict(arguments)))
        return ToolResult(f"{name} answered: 42 sources agree", is_error=False, latency_ms=3.0)


def scout(
    *, tools: tuple[str, ...] = (), server: ToolServer | None = None, **changes: object
) -> AgentTypeDef:
    fields: dict[str, object] = {
        "name": "scout",
        "description": "Finds facts with its tools.",
        "role": "You are the research scout of a marketing team.",
        "tools": (server or ToolServer("kb", URL, tools),),
        **changes,
    }
    return AgentTypeDef(**fields)  # type: ignore[arg-type]


@pytest.fixture
def mesh() -> FakeMesh:
    return FakeMesh.build()


@pytest.fixture
def tools() -> FakeTools:
    return FakeTools()


def runner(mesh: FakeMesh, tools: FakeTools | None) -> StepRunner:
    return StepRunner(
        tenant_id=mesh.tenant_id,
        uow=mesh.uow,
        memory=mesh.store,
        activity=RedisAgentActivity(mesh.redis),
        models=mesh.models,
        clock=mesh.clock,
        revisions=mesh.revisions,
        tools=tools,
    )


def planned(mesh: FakeMesh, definition: AgentTypeDef) -> Task:
    """A task whose plan has one subtask for the tool-using type, planned and running."""
    mesh.agent_types.create(definition)
    team = [AgentSpec(t) for t in ("coordinator", "critic", definition.name)]
    network = mesh.networks.create(
        name="n", description="", config=NetworkConfig(quality_threshold=0.0), agents=team
    )
    task = mesh.tasks.submit(
        network.id,
        description="Launch Orbit",
        context={},
        priority=Priority.NORMAL,
        plan=[{"key": "facts", "agent": definition.name, "description": SUBTASK}],
    )
    assert mesh.dispatcher.deliver_next(mesh.coordination) is not None
    running = mesh.tasks.get(network.id, task.id)
    assert running.status is TaskStatus.RUNNING
    return running


def tool_events(mesh: FakeMesh, task: Task) -> list[dict[str, object]]:
    history = mesh.tasks.get(task.network_id, task.id).history
    return [e.detail for e in history if e.kind == "tool_call"]


def recorded_calls(mesh: FakeMesh, task: Task) -> list[ToolCallRecord]:
    with mesh.uow(mesh.tenant_id) as uow:
        return uow.tool_calls.for_step(task.id, 1, "facts")


def redeliver(mesh: FakeMesh, task: Task) -> None:
    """As if the worker died after its tool calls and before it recorded the step."""
    del mesh.database.committed.steps[(task.id, 1, "facts")]
    mesh.clock.advance(91)  # past the step's lease: that attempt is presumed dead


def plant(mesh: FakeMesh, task: Task, tool: str, arguments: dict[str, object]) -> None:
    """A call recorded `started` and never finished: its worker died while it ran."""
    call = ToolCallRecord(
        task_id=task.id, iteration=1, key="facts", number=1, server="kb", tool=tool,
        arguments_hash="planted", arguments=arguments, status=ToolCallStatus.STARTED,
        started_at=mesh.clock.now(),
    )  # fmt: skip
    with mesh.uow(mesh.tenant_id) as uow:
        uow.tool_calls.start(call)
        uow.commit()


def run(mesh: FakeMesh, tools: FakeTools | None, task: Task) -> StepRecord:
    step = runner(mesh, tools).run_subtask(task.id, 1, "facts")
    assert step is not None
    return step


def test_the_step_calls_a_tool_and_its_answer_uses_the_result(
    mesh: FakeMesh, tools: FakeTools
) -> None:
    task = planned(mesh, scout())

    step = run(mesh, tools, task)

    assert step.status is StepStatus.COMPLETED, step.error
    assert tools.calls == [("lookup", {"query": SUBTASK})]
    assert "Tool kb__lookup said: lookup answered: 42 sources agree" in step.output
    offered = [c.tools for c in mesh.models.calls if c.tools]
    assert [t["function"]["name"] for t in offered[0]] == ["kb__lookup", "kb__send_email"]
    # Two model calls (the request, then the answer), their usage summed in the step's.
    assert len(mesh.models.calls_with(SUBTASK)) == 2
    assert step.usage.input_tokens > 0
    [call] = recorded_calls(mesh, task)
    assert (call.status, call.tool, call.result) == (
        ToolCallStatus.DONE, "lookup", "lookup answered: 42 sources agree"
    )
    [event] = tool_events(mesh, task)
    assert event["outcome"] == "ok" and event["tool"] == "lookup" and event["server"] == "kb"
    assert event["subtask"] == "facts" and event["iteration"] == 1
    assert SUBTASK in str(event["arguments"])


def test_a_redelivered_step_replays_a_done_call_without_calling(
    mesh: FakeMesh, tools: FakeTools
) -> None:
    task = planned(mesh, scout())
    first = run(mesh, tools, task)
    redeliver(mesh, task)

    again = run(mesh, tools, task)

    assert tools.calls == [("lookup", {"query": SUBTASK})]
    assert again.status is StepStatus.COMPLETED
    # Which attempt recorded it is the history's to tell: the step log keeps no attempt.
    history = mesh.tasks.get(task.network_id, task.id).history
    steps = [e.detail for e in history if e.kind == "step" and e.detail["subtask"] == "facts"]
    assert [s["attempt"] for s in steps] == [1, 2]
    said = "Tool kb__lookup said: lookup answered: 42 sources agree"
    assert said in first.output and said in again.output
    assert [e["outcome"] for e in tool_events(mesh, task)] == ["ok", "replayed"]


def test_an_idempotent_call_in_doubt_is_made_again_once(
    mesh: FakeMesh, tools: FakeTools
) -> None:
    task = planned(mesh, scout())
    plant(mesh, task, "lookup", {"query": SUBTASK})

    step = run(mesh, tools, task)

    assert step.status is StepStatus.COMPLETED, step.error
    assert tools.calls == [("lookup", {"query": SUBTASK})]
    assert "Tool kb__lookup said: lookup answered" in step.output
    [call] = recorded_calls(mesh, task)
    assert call.status is ToolCallStatus.DONE
    [event] = tool_events(mesh, task)
    assert (event["outcome"], event["repeated"]) == ("ok", True)


def test_a_call_in_doubt_of_a_tool_that_is_not_idempotent_fails_the_step(
    mesh: FakeMesh, tools: FakeTools
) -> None:
    task = planned(mesh, scout(tools=("send_email",)))
    plant(mesh, task, "send_email", {"to": SUBTASK, "subject": SUBTASK})

    step = run(mesh, tools, task)

    assert step.status is StepStatus.FAILED
    assert step.error is not None
    assert "the call to send_email may have run" in step.error
    assert "send_email is not idempotent, so Mesh will not repeat it" in step.error
    assert tools.calls == []
    assert step.usage.input_tokens > 0  # the model call that asked for it is paid for
    assert [e["outcome"] for e in tool_events(mesh, task)] == ["in_doubt"]
    [call] = recorded_calls(mesh, task)
    assert call.status is ToolCallStatus.STARTED  # still in doubt for any later attempt


def test_a_tool_the_type_lists_as_idempotent_is_made_again_when_in_doubt(
    mesh: FakeMesh, tools: FakeTools
) -> None:
    server = ToolServer("kb", URL, ("send_email",), idempotent=("send_email",))
    task = planned(mesh, scout(server=server))
    plant(mesh, task, "send_email", {"to": SUBTASK, "subject": SUBTASK})

    step = run(mesh, tools, task)

    assert step.status is StepStatus.COMPLETED, step.error
    assert tools.calls == [("send_email", {"to": SUBTASK, "subject": SUBTASK})]


def test_max_tool_calls_stops_the_loop(mesh: FakeMesh, tools: FakeTools) -> None:
    task = planned(mesh, scout(max_tool_calls=2))
    for n in range(5):
        mesh.models.tool_script.append({"name": "kb__lookup", "arguments": {"query": f"q{n}"}})

    step = run(mesh, tools, task)

    assert step.status is StepStatus.COMPLETED, step.error
    assert tools.calls == [("lookup", {"query": "q0"}), ("lookup", {"query": "q1"})]
    # Two turns with tools, then one without: the model has to answer.
    assert [c.tools is not None for c in mesh.models.calls_with(SUBTASK)] == [True, True, False]
    assert len(recorded_calls(mesh, task)) == 2


def test_a_type_with_tools_fails_its_step_where_no_tools_are_available(
    mesh: FakeMesh,
) -> None:
    task = planned(mesh, scout())

    step = run(mesh, None, task)

    assert step.status is StepStatus.FAILED
    assert step.error == "the scout type calls tools, and this worker has no MCP client"


def test_tool_calls_stop_at_the_tasks_deadline(mesh: FakeMesh, tools: FakeTools) -> None:
    task = planned(mesh, scout())
    deadline = task.deadline_at
    original = mesh.models.complete

    def late(*args: Any, **kwargs: Any) -> Any:
        answer = original(*args, **kwargs)
        mesh.clock.advance((deadline - mesh.clock.now()) / timedelta(seconds=1) + 1)
        return answer

    mesh.models.complete = late  # type: ignore[method-assign]

    step = run(mesh, tools, task)

    assert step.status is StepStatus.FAILED
    assert step.error == "the task's deadline passed while its tools were called"
    assert tools.calls == []


class SlowTools(FakeTools):
    """Tools whose every call takes longer than a step's lease."""

    def __init__(self, mesh: FakeMesh, seconds: float) -> None:
        super().__init__()
        self.mesh, self.seconds = mesh, seconds

    def call_tool(self, *args: Any, **kwargs: Any) -> ToolResult:
        self.mesh.clock.advance(self.seconds)
        return super().call_tool(*args, **kwargs)


def test_a_tool_call_that_outlasts_the_lease_renews_it(mesh: FakeMesh) -> None:
    task = planned(mesh, scout())
    tools = SlowTools(mesh, seconds=120)  # the lease is 90 s
    run(mesh, tools, task)
    # As if that attempt were still at work: its step not yet recorded, 60 s after its call
    # returned, past the lease it began with but within the one its call renewed.
    del mesh.database.committed.steps[(task.id, 1, "facts")]
    mesh.clock.advance(60)

    again = runner(mesh, tools).run_subtask(task.id, 1, "facts")

    assert again is Skipped.LEASED_ELSEWHERE
    mesh.clock.advance(31)  # the renewed lease has run out: that attempt is presumed dead
    assert run(mesh, tools, task).status is StepStatus.COMPLETED
