"""The offline model: a litellm custom provider that answers without any AI.

It lets Mesh run with no API keys, on the same code path as a real provider. Its answers are
deterministic, derived from the prompt, shaped as the prompt asks (a JSON plan, a draft, a
synthesis, a JSON verdict) and always labelled as produced offline.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

from meshcore.adapters.litellm_env import litellm

CustomLLM = litellm.CustomLLM
ModelResponse = litellm.ModelResponse
Usage = litellm.Usage
ToolCallType = litellm.types.utils.ChatCompletionMessageToolCall
Function = litellm.types.utils.Function

LABEL = "[offline model, not an AI]"
PROVIDER = "mesh-offline"

_FORMAT = re.compile(r"Answer format: (\w+)")
_AGENTS = re.compile(r"^Available agents: (.*)$", re.MULTILINE)
_ITERATION = re.compile(r"^Iteration: (\d+)$", re.MULTILINE)
_TASK = re.compile(r"^Task: (.*)$", re.MULTILINE)
_SUBTASK = re.compile(r"^Your subtask: (.*)$", re.MULTILINE)
# A prompt's data sections (meshcore.agents.profile.fenced): read for what they hold, never
# for the lines that steer the answer, which come from the rest of the prompt alone.
_DATA = re.compile(r'^<data source="(\w+)">\n(.*?)\n?</data>$', re.MULTILINE | re.DOTALL)


class OfflineModel(CustomLLM):
    def __init__(self, latency_ms: int = 0) -> None:
        super().__init__()
        self._latency_s = latency_ms / 1000

    def completion(self, *args: Any, **kwargs: Any) -> ModelResponse:
        messages = kwargs["messages"]
        system = "\n".join(m["content"] for m in messages if m["role"] == "system")
        user = "\n".join(m["content"] for m in messages if m["role"] == "user")
        tools = (kwargs.get("optional_params") or {}).get("tools")
        if self._latency_s:
            time.sleep(self._latency_s)
        text, call = respond(system, user, tools, tool_results(messages))
        response: ModelResponse = kwargs["model_response"]
        choice = response.choices[0]
        choice.message.content = text  # type: ignore[union-attr]
        if call is not None:
            choice.message.tool_calls = [  # type: ignore[union-attr]
                ToolCallType(
                    id=call["id"],
                    type="function",
                    function=Function(name=call["name"], arguments=json.dumps(call["arguments"])),
                )
            ]
            choice.finish_reason = "tool_calls"  # type: ignore[union-attr]
        response.model = f"{PROVIDER}/{kwargs['model']}"
        prompt_tokens = (len(system) + len(user)) // 4
        completion_tokens = len(text) // 4
        response.usage = Usage(  # type: ignore[attr-defined]
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            total_tokens=prompt_tokens + completion_tokens,
        )
        return response


def answer(system: str, user: str, results: Sequence[tuple[str, str]] = ()) -> str:
    """The offline answer to a prompt, in the shape its 'Answer format' line asks for;
    `results` are the (tool, result) of the tool calls it made, which a draft quotes."""
    found = _FORMAT.search(system)
    shape = found.group(1) if found else "draft"
    if shape == "plan_json":
        return _plan(user)
    if shape == "verdict_json":
        return _verdict(user)
    if shape == "synthesis":
        return _synthesis(user)
    said = [_said(name, text) for name, text in results]
    if shape == "json_schema":
        return _schema_answer(system, user, said)
    return "\n".join([_draft(system, user), *said])


def respond(
    system: str,
    user: str,
    tools: Sequence[Mapping[str, Any]] | None,
    results: Sequence[tuple[str, str]],
) -> tuple[str, dict[str, Any] | None]:
    """The offline turn: with tools offered and no tool result yet, one call of the first
    tool (its arguments from its input schema and the subtask); otherwise the answer."""
    if tools and not results:
        return "", tool_request(user, tools)
    return answer(system, user, results), None


def tool_request(user: str, tools: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The call of the first tool offered: each required string is the subtask's words,
    numbers their minimum (else 1), booleans true; other properties are left out."""
    function = tools[0].get("function", {})
    steering = _outside(user)
    subtask = _first(_SUBTASK, steering, _first(_TASK, steering)) or "the task"
    schema = function.get("parameters") or {}
    properties = schema.get("properties", {})
    arguments: dict[str, Any] = {}
    for name in schema.get("required", []):
        kind = properties.get(name, {}).get("type", "string")
        if kind == "string":
            arguments[name] = subtask[:200]
        elif kind in ("integer", "number"):
            arguments[name] = properties[name].get("minimum", 1)
        elif kind == "boolean":
            arguments[name] = True
    name = function.get("name", "")
    return {"id": f"call_{_digest(user + name):08x}", "name": name, "arguments": arguments}


def tool_results(messages: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(tool, result) of each tool message of a conversation (OpenAI shape), in order."""
    names = {
        call["id"]: call["function"]["name"]
        for m in messages
        for call in (m.get("tool_calls") or [])
    }
    return [
        (names.get(m.get("tool_call_id"), "tool"), str(m.get("content") or ""))
        for m in messages
        if m.get("role") == "tool"
    ]


def _said(name: str, text: str) -> str:
    first = _first_line(text)
    return f"Tool {name} said: {first[:200]}"


_SCHEMA = re.compile(r"valid under this JSON Schema:\n(\{.*\})\s*$", re.DOTALL)


def _schema_answer(system: str, user: str, said: Sequence[str] = ()) -> str:
    """A JSON object the type's schema accepts, its strings drawn from the draft (and from
    what its tools said)."""
    found = _SCHEMA.search(system)
    schema = json.loads(found.group(1)) if found else {"type": "object"}
    text = " ".join([_draft(system, user).splitlines()[0], *said])
    return json.dumps(_instance(schema, text, _digest(user)))


def _instance(schema: object, text: str, seed: int) -> object:
    """The simplest value `schema` accepts: enough for the tool path and checks to run."""
    if not isinstance(schema, dict):
        return text
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        options = schema["enum"]
        return options[seed % len(options)]
    kind = schema.get("type", "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        properties = schema.get("properties", {})
        wanted = [*schema.get("required", []), *properties]
        return {
            name: _instance(properties.get(name, {}), f"{text} ({name})", seed + i)
            for i, name in enumerate(dict.fromkeys(wanted))
        }
    if kind == "array":
        count = max(1, schema.get("minItems", 1))
        return [_instance(schema.get("items", {}), text, seed + i) for i in range(count)]
    if kind in ("number", "integer"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        high = schema.get("maximum", schema.get("exclusiveMaximum", low + 1))
        middle = (low + high) / 2
        return round(middle) if kind == "integer" else middle
    if kind == "boolean":
        return seed % 2 == 0
    if kind == "null":
        return None
    low, high = schema.get("minLength", 0), schema.get("maxLength")
    value = text.ljust(low, ".")
    return value[:high] if high is not None else value


def _first(pattern: re.Pattern[str], text: str, default: str = "") -> str:
    found = pattern.search(text)
    return found.group(1).strip() if found else default


def _digest(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


def _outside(text: str) -> str:
    """The prompt without its data sections."""
    return _DATA.sub("", text)


def _inside(text: str, source: str) -> str:
    """What the prompt's first data section from `source` holds ("" without one)."""
    return next((m.group(2) for m in _DATA.finditer(text) if m.group(1) == source), "")


def _first_line(text: str) -> str:
    return text.splitlines()[0].strip() if text.strip() else ""


def _plan(user: str) -> str:
    steering = _outside(user)
    task = _first(_TASK, steering)
    agents = [a.strip() for a in _first(_AGENTS, steering).split(",") if a.strip()]
    feedback = _unlabelled(_first_line(_inside(user, "critic")))
    suffix = f" Revise to address: {feedback}" if feedback else ""
    subtasks = [
        {
            "key": agent,
            "agent": agent,
            "description": f"The {agent} angle on: {task}.{suffix}",
            "depends_on": [],
        }
        for agent in agents
    ]
    return json.dumps(
        {"note": f"{LABEL} a plan of one subtask per specialist", "subtasks": subtasks}
    )


# What each specialist's offline draft proposes, and what the offline critic asks of it: enough
# to show the shape of a real run, from templates filled with the task's own words.
_PROPOSALS = {
    "research": "Three facts the team can rely on for '{topic}', each with how sure it is.",
    "content": "A subject line, an opening that states the benefit and one call to action, "
    "for '{topic}'.",
    "design": "One column: the headline first, the key benefit next, one button for the action.",
    "analytics": "Success is the click-through rate against the last comparable send; "
    "test two subject lines on a tenth of the list first.",
    "personalization": "Lead with what {segment} care about most; vary the opening per segment.",
}
_ADVICE = {
    "research": "back each claim with a fact and where it comes from",
    "content": "sharpen the subject line and end on one clear call to action",
    "design": "say what the reader sees first and where the call to action sits",
    "analytics": "name the metric that decides success and the target to beat",
    "personalization": "say which segment it is for and what changes for that segment",
}
_ROLE_TYPE = re.compile(r"^You are the (\w+) ")
_PART = re.compile(r'^- (\w+)(?: \(([^)]*)\))?: "(.*)"$', re.MULTILINE)
_ADDRESSED = "Addresses the critic's feedback: "


def _draft(system: str, user: str) -> str:
    role = system.split(".")[0].removeprefix("You are the ").strip()
    found = _ROLE_TYPE.search(system)
    agent = found.group(1) if found else ""
    steering = _outside(user)
    task = _first(_TASK, steering)
    subtask = _first(_SUBTASK, steering, task)
    built_on = [item[0].split("] ", 1)[-1][:80] for item in _items(_inside(user, "agents"))]
    # The step records as read what both lists hold: the work it builds on and shared memory.
    read = len(built_on) + len(_items(_inside(user, "memory")))
    topic = _topic(task)
    proposal = _PROPOSALS.get(agent, "A proposal for '{topic}'.").format(
        topic=topic, segment=_segment(_inside(user, "context"))
    )
    lines = [f"{LABEL} Draft by the {role} for: {subtask}", f"Proposal: {proposal}"]
    if built_on:
        lines.append("Building on: " + " | ".join(built_on))
    lines.append(f"Drew on {read} shared memory item(s). Ref {_digest(user):08x}.")
    return "\n".join(lines)


def _segment(context: str) -> str:
    try:
        found = json.loads(context) if context else {}
    except json.JSONDecodeError:
        found = {}
    segment = found.get("segment") if isinstance(found, dict) else None
    return str(segment).strip() if segment else "the target segment"


def _synthesis(user: str) -> str:
    parts = []
    for item in _items(_inside(user, "agents")):
        if not item[0].startswith("- ["):
            continue
        agent, _, key = item[0][3:].split("]", 1)[0].partition(":")
        parts.append((agent, key, _quote(item)))
    agents = sorted({agent for agent, _, _ in parts})
    lines = [
        f"{LABEL} Synthesis of {len(parts)} contribution(s) from {', '.join(agents)} "
        f"for: {_first(_TASK, _outside(user))}."
    ]
    lines += [f'- {_part_name(agent, key)}: "{quote}"' for agent, key, quote in parts]
    feedback = _unlabelled(_first_line(_inside(user, "critic")))
    if feedback:
        lines.append(_ADDRESSED + feedback)
    lines.append(f"Ref {_digest(user):08x}.")
    return "\n".join(lines)


def _verdict(user: str) -> str:
    """A score and feedback from the task's words and the answer's parts, the same every time.

    Between 0.50 and 0.80 by the task, up to 0.10 more for the parts the answer merges, and
    0.1 more with each revision: with a threshold of 0.8, some tasks pass on their first
    draft and others need one or two revisions.
    """
    steering = _outside(user)
    task = _first(_TASK, steering)
    iteration = int(_first(_ITERATION, steering, "1"))
    answer_text = _inside(user, "answer")
    parts = _PART.findall(answer_text)
    score = 0.5 + (_digest(task) % 31) / 100 + 0.02 * min(len(parts), 5)
    score = round(min(0.95, score + 0.1 * (iteration - 1)), 2)
    topic = _topic(task)
    if not parts:
        feedback = (
            f'The answer shows no specialist\'s part: for "{topic}", merge and quote each one.'
        )
    else:
        # "The weakest": one the task and the part's own words pick, so each task differs.
        agent, key, _ = min(parts, key=lambda p: (_digest(task + p[0] + p[2]), p[0]))
        advice = _ADVICE.get(agent, "make it specific to the task")
        name = _part_name(agent, key)
        feedback = f'The {name} part is the weakest for "{topic}": {advice}.'
        if len(parts) < 3:
            feedback += f" Only {len(parts)} specialist part(s) were merged: widen the team."
    return json.dumps({"score": score, "feedback": f"{LABEL} {feedback}", "note": LABEL})


def _part_name(agent: str, key: str) -> str:
    return agent if key in ("", agent) else f"{agent} ({key})"


def _topic(task: str) -> str:
    """The task's own words, short enough to quote back."""
    words = task.rstrip(".").split()
    return " ".join(words[:10]) + (" ..." if len(words) > 10 else "")


def _quote(item: list[str]) -> str:
    """What a part proposes (its Proposal line), else its first line, without the label."""
    lines = [line.strip() for line in item]
    lines[0] = lines[0].split("] ", 1)[-1]
    chosen = next((line for line in lines if line.startswith("Proposal: ")), lines[0])
    text = _unlabelled(chosen.removeprefix("Proposal: "))
    return (text[:157] + "...") if len(text) > 160 else text


def _unlabelled(text: str) -> str:
    return text.removeprefix(LABEL).strip()


def _items(text: str) -> list[list[str]]:
    """The items of a data section's list, each "- " line with its indented later lines."""
    items: list[list[str]] = []
    for line in text.splitlines():
        if line.startswith("- "):
            items.append([line])
        elif line.startswith("  ") and items:
            items[-1].append(line)
    return items
