"""The statements every step runs, built once with bind parameters.

Building a SQLAlchemy statement and deriving its cache key cost more CPU than Postgres spends
running one of these (about 70 of 130 microseconds, measured); a statement built once is
reused with new parameters. Parameters start with "p_": bare column names are SQLAlchemy's
own for INSERT and UPDATE values. The rest of the repositories build their statements where
they are used.
"""

from __future__ import annotations

import functools

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from meshcore.adapters.sql.tables import (
    agents,
    networks,
    step_attempts,
    steps,
    subtasks,
    task_events,
    tasks,
)

p = sa.bindparam

# --- tasks ------------------------------------------------------------------------------
# One statement per way of reading a task, so that a locked read cannot lose its lock to
# another option: each is chosen by name in SqlTaskRepository.
TASK = tasks.select().where(tasks.c.id == p("p_id"), tasks.c.tenant_id == p("p_tenant"))
TASK_IN_NETWORK = TASK.where(tasks.c.network_id == p("p_network"))
# FOR NO KEY UPDATE: it serialises writers of the task yet does not wait on the KEY SHARE
# locks that inserting steps and events (foreign keys) take.
TASK_LOCKED = TASK.with_for_update(key_share=True)
TASK_IN_NETWORK_LOCKED = TASK_IN_NETWORK.with_for_update(key_share=True)
# The SET clause comes from the parameters given (mapping.task_state, or heartbeat_at).
UPDATE_TASK = tasks.update().where(tasks.c.id == p("p_id"), tasks.c.tenant_id == p("p_tenant"))
# Every change a client can see moves the revision by the events it adds, under the row lock
# the UPDATE takes: numbers are handed out in commit order, and a rollback returns them.
_BUMPED = (tasks.c.revision, tasks.c.status, tasks.c.network_id)
_NEXT_REVISION = tasks.c.revision + p("p_n", type_=sa.Integer)
# The rest of the SET clause comes from the parameters (mapping.task_state, heartbeat_at).
BUMP_TASK = UPDATE_TASK.values(revision=_NEXT_REVISION).returning(*_BUMPED)
ADD_USAGE = UPDATE_TASK.values(
    input_tokens=tasks.c.input_tokens + p("p_input_tokens", type_=sa.BigInteger),
    output_tokens=tasks.c.output_tokens + p("p_output_tokens", type_=sa.BigInteger),
    cost_usd=tasks.c.cost_usd + p("p_cost_usd", type_=sa.Float),
    heartbeat_at=p("p_now", type_=tasks.c.heartbeat_at.type),
    revision=_NEXT_REVISION,
).returning(*_BUMPED)
_THE_TASK_IN_NETWORK = sa.and_(
    tasks.c.id == p("p_id"),
    tasks.c.tenant_id == p("p_tenant"),
    tasks.c.network_id == p("p_network"),
)
REVISION = sa.select(tasks.c.revision, tasks.c.status).where(_THE_TASK_IN_NETWORK)

HISTORY = (
    task_events.select()
    .where(task_events.c.task_id == p("p_task"), task_events.c.tenant_id == p("p_tenant"))
    .order_by(task_events.c.seq, task_events.c.id)
)
EVENTS = (
    HISTORY.where(task_events.c.seq > p("p_after", type_=sa.Integer))
    .limit(p("p_limit", type_=sa.Integer))
)

# --- networks ---------------------------------------------------------------------------
AGENT_COLUMNS = [c.label(f"agent_{c.name}") for c in agents.c]
# One statement: every step reads its network, and a second round trip for the agents would
# be paid on every step.
NETWORK_WITH_AGENTS = (
    sa.select(networks, *AGENT_COLUMNS)
    .select_from(networks.outerjoin(agents, agents.c.network_id == networks.c.id))
    .where(networks.c.id == p("p_id"), networks.c.tenant_id == p("p_tenant"))
    .order_by(agents.c.position, agents.c.id)
)

# The agent Network.agent_of picks (the first enabled of its type) counts a call; increments
# in SQL, so concurrent steps of one agent never lose a count.
_TAKES_THE_STEPS = (
    sa.select(agents.c.id)
    .where(
        agents.c.tenant_id == p("p_tenant"),
        agents.c.network_id == p("p_network"),
        agents.c.type == p("p_type"),
        sa.not_(agents.c.is_disabled),
    )
    .order_by(agents.c.position, agents.c.id)
    .limit(1)
    .scalar_subquery()
)
RECORD_CALL = (
    agents.update()
    .where(agents.c.id == _TAKES_THE_STEPS)
    .values(
        calls=agents.c.calls + 1,
        failures=agents.c.failures + p("p_failures", type_=sa.Integer),
        latency_ms_total=agents.c.latency_ms_total + p("p_latency_ms", type_=sa.Float),
        input_tokens=agents.c.input_tokens + p("p_input_tokens", type_=sa.BigInteger),
        output_tokens=agents.c.output_tokens + p("p_output_tokens", type_=sa.BigInteger),
        cost_usd=agents.c.cost_usd + p("p_cost_usd", type_=sa.Float),
    )
)

# --- subtasks and steps -----------------------------------------------------------------
STEP_COLUMNS = [c.label(f"step_{c.name}") for c in steps.c]
_SUBTASKS_OF_TASK = (
    sa.select(subtasks, *STEP_COLUMNS)
    .select_from(
        subtasks.outerjoin(
            steps,
            sa.and_(
                steps.c.task_id == subtasks.c.task_id,
                steps.c.iteration == subtasks.c.iteration,
                steps.c.key == subtasks.c.key,
            ),
        )
    )
    .where(subtasks.c.task_id == p("p_task"), subtasks.c.tenant_id == p("p_tenant"))
)
SUBTASKS = _SUBTASKS_OF_TASK.where(subtasks.c.iteration == p("p_iteration")).order_by(
    subtasks.c.position
)
SUBTASK = SUBTASKS.where(subtasks.c.key == p("p_key"))
# Every iteration's subtasks in one statement, so a task's read costs the same after revisions.
EVERY_SUBTASK = _SUBTASKS_OF_TASK.order_by(
    subtasks.c.iteration, subtasks.c.wave, subtasks.c.position
)
# A task in a few fields: its current iteration's steps planned and recorded, counted here.
_PLANNED = (
    sa.select(sa.func.count())
    .where(subtasks.c.task_id == tasks.c.id, subtasks.c.iteration == tasks.c.iteration)
    .scalar_subquery()
)
_DONE = (
    sa.select(sa.func.count())
    .where(
        steps.c.task_id == tasks.c.id,
        steps.c.iteration == tasks.c.iteration,
        sa.not_(steps.c.key.startswith("@")),
    )
    .scalar_subquery()
)
SUMMARY = sa.select(
    tasks.c.id,
    tasks.c.network_id,
    tasks.c.status,
    tasks.c.revision,
    tasks.c.iteration,
    tasks.c.wave,
    tasks.c.result,
    _PLANNED.label("planned"),
    _DONE.label("done"),
).where(_THE_TASK_IN_NETWORK)
STEP = steps.select().where(
    steps.c.task_id == p("p_task"),
    steps.c.iteration == p("p_iteration"),
    steps.c.key == p("p_key"),
    steps.c.tenant_id == p("p_tenant"),
)


@functools.cache
def insert_absent(dialect: str, table: sa.Table) -> sa.Insert:
    """INSERT of rows whose primary key is not taken yet, returning the rows that went in."""
    insert = (postgresql if dialect == "postgresql" else sqlite).insert
    return insert(table).on_conflict_do_nothing().returning(*table.c)


@functools.cache
def begin_attempt(dialect: str) -> sa.Insert:
    """Count an attempt at a step and lease it, unless a lease taken after p_stale holds it."""
    insert = (postgresql if dialect == "postgresql" else sqlite).insert(step_attempts)
    return insert.on_conflict_do_update(
        index_elements=["task_id", "iteration", "key"],
        set_={"attempts": step_attempts.c.attempts + 1, "started_at": insert.excluded.started_at},
        where=step_attempts.c.started_at < p("p_stale", type_=step_attempts.c.started_at.type),
    ).returning(step_attempts.c.attempts)
