"""The tenants' agent types in the record: one row per version, the definition sealed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from meshcore.adapters.sql.repository import Repository
from meshcore.adapters.sql.tables import agent_types, agents
from meshcore.domain.agent_types import AgentTypeDef, ModelDefaults, ToolServer
from meshcore.domain.errors import Conflict
from meshcore.domain.memory import MemoryType


class SqlAgentTypeRepository(Repository):
    def current(self, names: Sequence[str] | None = None) -> dict[str, AgentTypeDef]:
        latest = (
            sa.select(agent_types.c.name, sa.func.max(agent_types.c.version).label("version"))
            .where(agent_types.c.tenant_id == self._tenant_id)
            .group_by(agent_types.c.name)
        )
        if names is not None:
            latest = latest.where(agent_types.c.name.in_(list(names)))
        latest = latest.subquery()
        statement = (
            sa.select(agent_types)
            .join(
                latest,
                sa.and_(
                    agent_types.c.name == latest.c.name, agent_types.c.version == latest.c.version
                ),
            )
            .where(agent_types.c.tenant_id == self._tenant_id, ~agent_types.c.is_deleted)
        )
        rows = self._db.execute(statement.order_by(agent_types.c.name)).mappings()
        return {row["name"]: self._definition(row) for row in rows}

    def version(self, name: str, version: int) -> AgentTypeDef | None:
        row = (
            self._db.execute(
                sa.select(agent_types).where(
                    agent_types.c.tenant_id == self._tenant_id,
                    agent_types.c.name == name,
                    agent_types.c.version == version,
                )
            )
            .mappings()
            .first()
        )
        return self._definition(row) if row is not None else None

    def latest_version(self, name: str) -> int:
        found = self._db.execute(
            sa.select(sa.func.max(agent_types.c.version)).where(
                agent_types.c.tenant_id == self._tenant_id, agent_types.c.name == name
            )
        ).scalar()
        return found or 0

    def add(self, definition: AgentTypeDef, *, is_deleted: bool = False) -> None:
        row = {
            "tenant_id": self._tenant_id,
            "name": definition.name,
            "version": definition.version,
            "definition": self._sealer.seal_json(definition_json(definition)),
            "is_deleted": is_deleted,
            "created_at": definition.created_at,
        }
        if not self._insert_absent(agent_types, [row]):
            raise Conflict(
                f"agent type {definition.name!r} changed while this change was made: read it"
                " again and retry"
            )

    def networks_using(self, name: str) -> list[UUID]:
        rows = self._db.execute(
            sa.select(agents.c.network_id)
            .where(agents.c.tenant_id == self._tenant_id, agents.c.type == name)
            .distinct()
        )
        return [row[0] for row in rows]

    def _definition(self, row: Any) -> AgentTypeDef:
        data = self._sealer.open_json(row["definition"])
        return definition_from_json(data, version=row["version"], created_at=row["created_at"])


def definition_json(d: AgentTypeDef) -> dict[str, object]:
    return {
        "name": d.name,
        "description": d.description,
        "role": d.role,
        "capabilities": list(d.capabilities),
        "reads": [str(r) for r in d.reads],
        "writes": str(d.writes),
        "answer": d.answer,
        "model": {
            "chain": list(d.model.chain) if d.model.chain else None,
            "temperature": d.model.temperature,
            "max_tokens": d.model.max_tokens,
        },
        "tools": [
            {
                "name": t.name,
                "url": t.url,
                "command": list(t.command),
                "tools": list(t.tools),
                "idempotent": list(t.idempotent),
                "headers": [list(h) for h in t.headers],  # the definition is sealed whole
            }
            for t in d.tools
        ],
        "max_tool_calls": d.max_tool_calls,
        "memory_tokens": d.memory_tokens,
        "queue": d.queue,
        "confidence": d.confidence,
    }


def definition_from_json(data: Any, *, version: int, created_at: datetime) -> AgentTypeDef:
    model = data["model"]
    return AgentTypeDef(
        name=data["name"],
        description=data["description"],
        role=data["role"],
        capabilities=tuple(data["capabilities"]),
        reads=tuple(MemoryType(r) for r in data["reads"]),
        writes=MemoryType(data["writes"]),
        answer=data["answer"],
        model=ModelDefaults(
            chain=tuple(model["chain"]) if model["chain"] else None,
            temperature=model["temperature"],
            max_tokens=model["max_tokens"],
        ),
        tools=tuple(
            ToolServer(
                t["name"],
                t["url"],
                tuple(t["tools"]),
                tuple(t["idempotent"]),
                headers=tuple((k, v) for k, v in t.get("headers", [])),
                command=tuple(t.get("command", ())),
            )
            for t in data["tools"]
        ),
        max_tool_calls=data["max_tool_calls"],
        memory_tokens=data.get("memory_tokens"),  # absent from versions made before it
        queue=data["queue"],
        confidence=data["confidence"],
        version=version,
        created_at=created_at,
    )
