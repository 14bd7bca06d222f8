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
from typing import Any

from meshcore.adapters.litellm_env import litellm

CustomLLM = litellm.CustomLLM
ModelResponse = litellm.ModelResponse
Usage = litellm.Usage

LABEL = "[offline model, not an AI]"
PROVIDER = "mesh-offline"

_FORMAT = re.compile(r"Answer format: (\w+)")
_AGENTS = re.compile(r"^Available agents: (.*)$", re.MULTILINE)
_ITERATION = re.compile(r"^Iteration: (\d+)$", re.MULTILINE)
_TASK = re.compile(r"^Task: (.*)$", re.MULTILINE)
_SUBTASK = re.compile(r"^Your subtask: (.*)$", re.MULTILINE)
_FEEDBACK = re.compile(r"^Critic feedback to address in this revision: (.*)$", re.MULTILINE)


class OfflineModel(CustomLLM):
    def __init__(self, latency_ms: int = 0) -> None:
        super().__init__()
        self._latency_s = latency_ms / 1000

    def completion(self, *args: Any, **kwargs: Any) -> ModelResponse:
        messages = kwargs["messages"]
        system = "\n".join(m["content"] for m in messages if m["role"] == "system")
        user = "\n".join(m["content"] for m in messages if m["role"] == "user")
        if self._latency_s:
            time.sleep(self._latency_s)
        text = answer(system, user)
        response: ModelResponse = kwargs["model_response"]
        response.choices[0].message.content = text  # type: ignore[union-attr]
        response.model = f"{PROVIDER}/{kwargs['model']}"
        prompt_tokens = (len(system) + len(user)) // 4
        completion_tokens = len(text) // 4
        response.usage = Usage(  # type: ignore[attr-defined]
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            total_tokens=prompt_tokens + completion_tokens,
        )
        return response


def answer(system: str, user: str) -> str:
    """The offline answer to a prompt, in the shape its 'Answer format' line asks for."""
    found = _FORMAT.search(system)
    shape = found.group(1) if found else "draft"
    if shape == "plan_json":
        return _plan(user)
    if shape == "verdict_json":
        return _verdict(user)
    if shape == "synthesis":
        return _synthesis(user)
    return _draft(system, user)


def _first(pattern: re.Pattern[str], text: str, default: str = "") -> str:
    found = pattern.search(text)
    return found.group(1).strip() if found else default


def _digest(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


def _plan(user: str) -> str:
    task = _first(_TASK, user)
    agents = [a.strip() for a in _first(_AGENTS, user).split(",") if a.strip()]
    feedback = _first(_FEEDBACK, user)
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


def _draft(system: str, user: str) -> str:
    role = system.split(".")[0].removeprefix("You are the ").strip()
    subtask = _first(_SUBTASK, user, _first(_TASK, user))
    built_on = [line[2:].split("] ", 1)[-1][:80] for line in _section(user, "Work you build on:")]
    memory = _section(user, "Shared memory:")
    lines = [f"{LABEL} Draft by the {role} for: {subtask}"]
    if built_on:
        lines.append("Building on: " + " | ".join(built_on))
    lines.append(f"Drew on {len(memory)} shared memory item(s). Ref {_digest(user):08x}.")
    return "\n".join(lines)


def _synthesis(user: str) -> str:
    parts = [line for line in user.splitlines() if line.startswith("- [")]
    agents = sorted({line[3:].split(":", 1)[0] for line in parts})
    return (
        f"{LABEL} Synthesis of {len(parts)} contribution(s) from {', '.join(agents)} "
        f"for: {_first(_TASK, user)}. Ref {_digest(user):08x}."
    )


def _verdict(user: str) -> str:
    iteration = int(_first(_ITERATION, user, "1"))
    # Between 0.55 and 0.75 on a first draft, better by 0.1 with each revision.
    answer_only = _ITERATION.sub("", user)  # the same answer scores the same base
    score = round(min(0.95, 0.55 + (_digest(answer_only) % 21) / 100 + 0.1 * (iteration - 1)), 2)
    feedback = "Tighten the subject line and make the call to action more specific."
    return json.dumps({"score": score, "feedback": feedback, "note": LABEL})


def _section(text: str, heading: str) -> list[str]:
    lines = text.splitlines()
    if heading not in lines:
        return []
    section = []
    for line in lines[lines.index(heading) + 1 :]:
        if not line.startswith("- "):
            break
        section.append(line)
    return section
