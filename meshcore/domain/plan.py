"""Plans: the subtasks a coordinator hands out, and the rules that make a plan runnable."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from meshcore.domain.agent_types import (
    BUILTIN_VERSION,
    NAME_PATTERN,
    AgentTypeDef,
    is_specialist,
)
from meshcore.domain.errors import InvalidPlan

KEY_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
MAX_SUBTASKS = 32


@dataclass(frozen=True)
class PlannedSubtask:
    key: str
    agent_type: str
    description: str
    depends_on: tuple[str, ...] = ()
    # Set once the plan is validated: the type's version the step runs with, and its queue.
    agent_version: int = BUILTIN_VERSION
    queue: str = ""


@dataclass(frozen=True)
class Plan:
    """A validated plan: its subtasks grouped into waves, each wave after its dependencies."""

    waves: tuple[tuple[PlannedSubtask, ...], ...]

    @property
    def subtasks(self) -> tuple[PlannedSubtask, ...]:
        return tuple(s for wave in self.waves for s in wave)

    def wave_of(self, key: str) -> int:
        return next(i for i, wave in enumerate(self.waves) if any(s.key == key for s in wave))

    def pinned(self, types: Mapping[str, AgentTypeDef]) -> Plan:
        """The plan with each subtask's type version and queue fixed as of now: a redelivered
        step, or one the sweeper re-drives after an edit, runs as planned."""
        for s in self.subtasks:
            if s.agent_type not in types:
                raise InvalidPlan(f"subtask {s.key!r}: agent type {s.agent_type!r} is gone")
        return Plan(
            tuple(
                tuple(
                    replace(
                        s,
                        agent_version=types[s.agent_type].version,
                        queue=types[s.agent_type].queue,
                    )
                    for s in wave
                )
                for wave in self.waves
            )
        )


def parse_plan(raw: object) -> list[PlannedSubtask]:
    """Read a plan given as JSON-like data (from a client or a model) into subtasks."""
    items = raw.get("subtasks") if isinstance(raw, Mapping) else raw
    if not isinstance(items, list):
        raise InvalidPlan("a plan is a list of subtasks")
    subtasks = []
    for i, item in enumerate(items):
        where = f"plan.{i}"
        if not isinstance(item, Mapping):
            raise InvalidPlan("a subtask is an object", field=where)
        key, agent, description = item.get("key"), item.get("agent"), item.get("description")
        depends_on = item.get("depends_on", [])
        if not isinstance(key, str) or not KEY_PATTERN.match(key):
            raise InvalidPlan("key must match [a-z0-9][a-z0-9_-]{0,63}", field=f"{where}.key")
        if not isinstance(agent, str) or not NAME_PATTERN.match(agent):
            raise InvalidPlan(f"unknown agent type {agent!r}", field=f"{where}.agent")
        if not isinstance(description, str) or not description.strip():
            raise InvalidPlan(
                "description must be a non-empty string", field=f"{where}.description"
            )
        if not isinstance(depends_on, list) or not all(isinstance(d, str) for d in depends_on):
            raise InvalidPlan("depends_on must be a list of keys", field=f"{where}.depends_on")
        subtasks.append(PlannedSubtask(key, agent, description.strip(), tuple(depends_on)))
    return subtasks


def validate_plan(subtasks: Sequence[PlannedSubtask], available: Iterable[str]) -> Plan:
    """Check a plan against the network's agents and order it into waves, or raise InvalidPlan."""
    if not subtasks:
        raise InvalidPlan("a plan needs at least one subtask")
    if len(subtasks) > MAX_SUBTASKS:
        raise InvalidPlan(f"a plan has at most {MAX_SUBTASKS} subtasks")
    available = frozenset(available)
    by_key: dict[str, PlannedSubtask] = {}
    for s in subtasks:
        if s.key in by_key:
            raise InvalidPlan(f"subtask key {s.key!r} is used twice")
        if not is_specialist(s.agent_type):
            raise InvalidPlan(f"subtask {s.key!r}: a {s.agent_type} agent does not take subtasks")
        if s.agent_type not in available:
            raise InvalidPlan(f"subtask {s.key!r}: the network has no {s.agent_type} agent")
        by_key[s.key] = s
    for s in subtasks:
        if s.key in s.depends_on:
            raise InvalidPlan(f"subtask {s.key!r} depends on itself")
        unknown = [d for d in s.depends_on if d not in by_key]
        if unknown:
            raise InvalidPlan(f"subtask {s.key!r} depends on unknown subtask {unknown[0]!r}")
    return Plan(_waves(subtasks))


def _waves(subtasks: Sequence[PlannedSubtask]) -> tuple[tuple[PlannedSubtask, ...], ...]:
    # Kahn's algorithm, a layer at a time: whatever never becomes ready sits on a cycle.
    done: set[str] = set()
    remaining = list(subtasks)
    waves = []
    while remaining:
        ready = [s for s in remaining if all(d in done for d in s.depends_on)]
        if not ready:
            cycle = ", ".join(sorted(s.key for s in remaining))
            raise InvalidPlan(f"dependencies form a cycle among: {cycle}")
        waves.append(tuple(ready))
        done.update(s.key for s in ready)
        remaining = [s for s in remaining if s.key not in done]
    return tuple(waves)


def plan_to_json(subtasks: Iterable[PlannedSubtask]) -> list[dict[str, object]]:
    return [
        {
            "key": s.key,
            "agent": str(s.agent_type),
            "description": s.description,
            "depends_on": list(s.depends_on),
        }
        for s in subtasks
    ]
