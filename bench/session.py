"""The processes of one bench run, started on first use and kept for the suites after.

Starting a Mesh worker costs seconds (litellm's import), so suites that need the same fleet
or the same API share it; a fleet of another shape is started only after the running one is
stopped, so that two fleets never compete for the two cores.
"""

from __future__ import annotations

from contextlib import ExitStack
from uuid import UUID, uuid4

from bench import processes
from bench.mesh_fleet import ONE_PASS, MeshFleet, mesh_fleet
from bench.processes import Proc, Servers, WorkerSpec
from meshcore.domain.network import NetworkConfig


class Session:
    def __init__(self, servers: Servers, quick: bool) -> None:
        self.servers, self.quick = servers, quick
        self._fleet: tuple[tuple, MeshFleet, ExitStack] | None = None
        self._api: tuple[Proc, str, ExitStack] | None = None
        self._api_key: str | None = None

    def api_key(self) -> str:
        """A key of the bench's tenant, made on first use (the record is emptied per run)."""
        if self._api_key is None:
            self._api_key = processes.create_api_key(self.servers)
        return self._api_key

    def auth(self) -> dict[str, str]:
        """The header every request to Mesh's API carries."""
        return {"Authorization": f"Bearer {self.api_key()}"}

    def fleet(self, specs: list[WorkerSpec], latency_ms: int = 0) -> MeshFleet:
        key = (tuple(specs), latency_ms)
        if self._fleet is not None and self._fleet[0] == key:
            return self._fleet[1]
        self.stop_fleet()
        stack = ExitStack()
        try:
            fleet = stack.enter_context(mesh_fleet(self.servers, specs, latency_ms=latency_ms))
        except BaseException:
            stack.close()
            raise
        self._fleet = (key, fleet, stack)
        return fleet

    def api(self) -> tuple[Proc, str]:
        """Mesh's API under gunicorn, as in production."""
        if self._api is None:
            stack = ExitStack()
            env = processes.mesh_env(self.servers)
            proc, base = stack.enter_context(
                processes.gunicorn("api", "meshapi.app:create_app()", env)
            )
            self._api = (proc, base, stack)
        return self._api[0], self._api[1]

    def network(self, fleet: MeshFleet, config: NetworkConfig = ONE_PASS) -> UUID:
        """A network of the default team of its own, so suites do not read each other's memory."""
        tenant = fleet.mesh.tenant(fleet.mesh.settings.tenant)
        return tenant.networks.create(
            name=f"bench-{uuid4().hex[:8]}", description="benchmark", config=config
        ).id

    def stop_fleet(self) -> None:
        if self._fleet is not None:
            self._fleet[2].close()
            self._fleet = None

    def stop_api(self) -> None:
        if self._api is not None:
            self._api[2].close()
            self._api = None

    def close(self) -> None:
        self.stop_api()
        self.stop_fleet()
