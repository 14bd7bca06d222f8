"""What sealing content at rest costs: per value, and in a task's service CPU.

Per value: seal and open of a typical task's fields (its description, context, a step's
output, the result), in this process. Per task: one task (plan, five specialists, synthesis,
critic; one pass, the offline model at zero latency) run to the end inside this process on
the bench's Postgres and Redis, its messages delivered inline (no Celery), so that the CPU
measured is Mesh's own: the services, the mapping and the drivers. Twice, round by round in
the same run: with the real sealer, and with a sealer that stores content clear (ClearSealer,
here only, as Mesh stored it before sealing; no setting turns sealing off). The CPU of the
Postgres and Redis servers is theirs, and not counted.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable

from bench import processes
from bench.mesh_fleet import ONE_PASS
from bench.processes import Servers
from bench.report import Figure, publish
from bench.session import Session
from meshcore.adapters.sealing import Sealer
from meshcore.settings import OFFLINE_MODEL

DESCRIPTION = "Write the launch email for Mesh, for developers who self-host their agents"
CONTEXT = {"segment": "developers", "tone": "plain", "length": "short", "cta": "try it"}
OUTPUT = "A paragraph of a specialist's contribution to the launch email. " * 24  # ~1.5 KB
RESULT = {"answer": OUTPUT * 3, "score": 0.86, "feedback": "Clear and on brief. " * 10}
FIELDS = {"description": DESCRIPTION, "context": CONTEXT, "step output": OUTPUT, "result": RESULT}


class ClearSealer(Sealer):
    """Stores every value as it is: the record as it was before sealing, for the baseline."""

    def __init__(self) -> None:
        super().__init__([Sealer.generate_key()])

    def seal(self, text: str) -> str:
        return text

    def open(self, stored: str) -> str:
        return stored

    def seal_json(self, value: object) -> object:  # the JSON column takes it as it is
        return value

    def open_json(self, stored: object) -> object:
        return stored


def per_value_us(call: Callable[[object], object], values: list[object]) -> float:
    """The median over batches of 100 of `call` on each of `values`, per call, in µs."""
    samples = []
    for batch in range(0, len(values), 100):
        chunk = values[batch : batch + 100]
        started = time.perf_counter()
        for value in chunk:
            call(value)
        samples.append((time.perf_counter() - started) / len(chunk) * 1e6)
    return statistics.median(samples)


def microbench(repeat: int) -> dict[str, tuple[float, float]]:
    """Seal and open, in µs, of each typical field; each token opened once (no cache hit)."""
    sealer = Sealer([Sealer.generate_key(), Sealer.generate_key()])
    found = {}
    for name, value in FIELDS.items():
        seal = sealer.seal if isinstance(value, str) else sealer.seal_json
        opened = sealer.open if isinstance(value, str) else sealer.open_json
        tokens = [seal(value) for _ in range(repeat * 100)]
        found[name] = (per_value_us(seal, [value] * repeat * 100), per_value_us(opened, tokens))
    return found


def task_cpu(servers: Servers, rounds: int) -> dict[str, list[float]]:
    """A task's CPU seconds in this process, sealed and clear, interleaved round by round."""
    from meshcore import bootstrap
    from meshcore.adapters.redis_memory import RedisMemoryStore
    from meshcore.adapters.sql.uow import SqlUnitOfWorkFactory
    from meshcore.domain.task import Priority, TaskStatus
    from meshworkers.app import create_celery
    from tests.fakes import FakeDispatcher

    settings = processes.settings(servers).model_copy(
        update={"model_chain": (OFFLINE_MODEL,), "allow_offline_model": True}
    )
    meshes = {}
    for mode in ("sealed", "clear"):
        mesh = bootstrap.build(settings, create_celery(settings))
        # The task's messages are delivered in this process.
        mesh.substitute(dispatcher=FakeDispatcher())
        if mode == "clear":
            clear, servers_ = ClearSealer(), mesh.connections
            mesh.substitute(
                record=SqlUnitOfWorkFactory(servers_.engine, clear),
                memory=RedisMemoryStore(servers_.redis, clear),
            )
        meshes[mode] = mesh
    cpu: dict[str, list[float]] = {"sealed": [], "clear": []}
    try:
        networks = {
            mode: mesh.tenant(settings.tenant).networks.create(
                name=f"sealing-{mode}", description="", config=ONE_PASS
            )
            for mode, mesh in meshes.items()
        }
        for round_ in range(rounds + 2):
            for mode, mesh in meshes.items():
                services = mesh.tenant(settings.tenant)
                started = time.process_time()
                task = services.tasks.submit(
                    networks[mode].id,
                    description=DESCRIPTION,
                    context=CONTEXT,
                    priority=Priority.NORMAL,
                )
                mesh.dispatcher.drain(services.coordination)
                spent = time.process_time() - started
                ended = services.tasks.get(task.network_id, task.id)
                if ended.status is not TaskStatus.COMPLETED:
                    raise RuntimeError(f"the {mode} task ended {ended.status}: {ended.error}")
                if round_ >= 2:  # two warm-ups: imports, connections, caches
                    cpu[mode].append(spent)
    finally:
        for mesh in meshes.values():
            mesh.close()
    return cpu


def run(session: Session) -> list[Figure]:
    repeat, rounds = (20, 10) if session.quick else (200, 60)
    micro = microbench(repeat)
    cpu = task_cpu(session.servers, rounds)
    sealed_ms = statistics.median(cpu["sealed"]) * 1000
    clear_ms = statistics.median(cpu["clear"]) * 1000
    figures = [
        Figure(f"seal + open, {name} ({size(name)} bytes)", seal + opened, seal, "us",
               f"baseline: seal alone; open {opened:.1f} us")
        for name, (seal, opened) in micro.items()
    ]  # fmt: skip
    figures += [
        Figure("task service CPU, sealed (in-process, one pass)", sealed_ms, clear_ms, "ms",
               "baseline: the same task stored clear, same run"),
        Figure("task service CPU added by sealing", sealed_ms - clear_ms, clear_ms, "ms",
               "ratio: share of a task's CPU without sealing (Celery's own CPU not counted)"),
    ]  # fmt: skip
    return figures


def size(name: str) -> int:
    value = FIELDS[name]
    return len(value if isinstance(value, str) else json.dumps(value))


def main(session: Session) -> None:
    publish("Encryption at rest (Fernet, MESH_DATA_KEYS)", run(session))
