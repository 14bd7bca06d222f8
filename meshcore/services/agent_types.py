"""The catalog of agent types: a tenant's own beside the built-in ones, and their versions."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import replace

import structlog

from meshcore.agents import BUILTINS
from meshcore.agents.answer_schema import check_schema
from meshcore.domain.agent_types import NAME_PATTERN, AgentTypeDef, command_refusal
from meshcore.domain.errors import Conflict, InvalidInput, NotFound
from meshcore.ports import Clock, UnitOfWork, UnitOfWorkFactory, WebhookSender
from meshcore.services.webhooks import refusal_of

log = structlog.get_logger(__name__)


class AgentTypeService:
    def __init__(
        self,
        *,
        tenant_id: str,
        uow: UnitOfWorkFactory,
        clock: Clock,
        urls: WebhookSender | None = None,
        stdio_commands: Collection[str] = (),
    ) -> None:
        self._tenant_id, self._uow, self._clock = tenant_id, uow, clock
        self._urls = urls  # checks a tool server's URL as a webhook's (no private addresses)
        # The programs a stdio tool server may run (MESH_MCP_STDIO_COMMANDS); none unless
        # given. The worker checks again before it runs one: the setting may change.
        self._stdio_commands = frozenset(stdio_commands)

    def list(self) -> list[AgentTypeDef]:
        with self._uow(self._tenant_id) as uow:
            own = uow.agent_types.current()
        return sorted([*BUILTINS.values(), *own.values()], key=lambda d: d.name)

    def get(self, name: str, version: int | None = None) -> AgentTypeDef:
        if not NAME_PATTERN.match(name) or (version is not None and not 1 <= version < 2**31):
            raise NotFound("agent type", name if version is None else f"{name}/{version}")
        if name in BUILTINS:
            if version not in (None, BUILTINS[name].version):
                raise NotFound("agent type", f"{name}/{version}")
            return BUILTINS[name]
        with self._uow(self._tenant_id) as uow:
            found = (
                uow.agent_types.current([name]).get(name)
                if version is None
                else uow.agent_types.version(name, version)
            )
        if found is None:
            raise NotFound("agent type", name if version is None else f"{name}/{version}")
        return found

    def create(self, definition: AgentTypeDef) -> AgentTypeDef:
        """Add a type under a new name (Conflict if a built-in or a live type holds it)."""
        self._check(definition)
        with self._uow(self._tenant_id) as uow:
            if definition.name in uow.agent_types.current([definition.name]):
                raise Conflict(f"agent type {definition.name!r} exists: PUT changes it")
            saved = self._save(uow, definition)
        log.info("agent_type.created", agent_type=saved.name, version=saved.version)
        return saved

    def change(self, definition: AgentTypeDef) -> AgentTypeDef:
        """Store a new version of an existing type; steps already run keep theirs."""
        self._check(definition)
        with self._uow(self._tenant_id) as uow:
            if definition.name not in uow.agent_types.current([definition.name]):
                raise NotFound("agent type", definition.name)
            saved = self._save(uow, definition)
        log.info("agent_type.changed", agent_type=saved.name, version=saved.version)
        return saved

    def delete(self, name: str) -> None:
        """Delete a type no network uses (Conflict naming the networks that do)."""
        _refuse_builtin(name, "deleted")
        with self._uow(self._tenant_id) as uow:
            current = uow.agent_types.current([name]).get(name)
            if current is None:
                raise NotFound("agent type", name)
            if using := uow.agent_types.networks_using(name):
                shown = ", ".join(str(n) for n in using[:5])
                raise Conflict(
                    f"agent type {name!r} is used by {len(using)} network(s) ({shown}):"
                    " remove those agents first"
                )
            version = uow.agent_types.latest_version(name) + 1
            tombstone = replace(current, version=version, created_at=self._clock.now())
            uow.agent_types.add(tombstone, is_deleted=True)
            uow.commit()
        log.info("agent_type.deleted", agent_type=name)

    def _check(self, definition: AgentTypeDef) -> None:
        _refuse_builtin(definition.name, "changed")
        if definition.answer is not None:
            check_schema(definition.answer)
        for i, server in enumerate(definition.tools):
            if server.command:
                if refused := command_refusal(server.command, self._stdio_commands):
                    raise InvalidInput(f"tools.{i}.command", refused)
            elif refused := refusal_of(self._urls, server.url):
                raise InvalidInput(f"tools.{i}.url", refused)

    def _save(self, uow: UnitOfWork, definition: AgentTypeDef) -> AgentTypeDef:
        version = uow.agent_types.latest_version(definition.name) + 1
        saved = replace(definition, version=version, is_builtin=False, created_at=self._clock.now())
        uow.agent_types.add(saved)
        uow.commit()
        return saved


def _refuse_builtin(name: str, verb: str) -> None:
    if name in BUILTINS:
        raise Conflict(
            f"{name!r} is a built-in agent type and cannot be {verb}: copy it to a new name"
        )


def current_types(uow: UnitOfWork, names: Iterable[str]) -> dict[str, AgentTypeDef]:
    """The current definition of each type named that exists: built-ins need no query."""
    names = set(names)
    found = {n: BUILTINS[n] for n in names if n in BUILTINS}
    if own := sorted(names - found.keys()):
        found.update(uow.agent_types.current(own))
    return found


def catalog_of(
    uow: UnitOfWorkFactory, tenant_id: str, names: Iterable[str]
) -> dict[str, AgentTypeDef]:
    """`current_types` in a transaction of its own, and none when all are built in."""
    names = set(names)
    if names <= BUILTINS.keys():
        return {n: BUILTINS[n] for n in names}
    with uow(tenant_id) as unit:
        return current_types(unit, names)


def definition_at(uow: UnitOfWork, name: str, version: int) -> AgentTypeDef:
    """The version of a type a step was planned with (a built-in's own needs no query).

    Not kept per process: a tenant erased and made again may number its versions anew.
    """
    if name in BUILTINS:
        return BUILTINS[name]
    found = uow.agent_types.version(name, version)
    if found is None:
        raise NotFound("agent type", f"{name}/{version}")
    return found
