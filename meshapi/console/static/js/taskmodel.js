// A task's plan as the console draws it, rebuilt from the task's event log: the history of a
// GET on load, then each event of the stream. Both are the same log (the stream's event k is
// the history's entry with seq k), so the picture never depends on when the page was opened.

export const ENDINGS = new Set(["completed", "failed", "cancelled", "timed_out"]);
// A node in one of these states will not change again.
export const FINAL = new Set(["completed", "failed", "cancelled", "stopped", "skipped", "given"]);

const KINDS = {
  "step.finished": "step",
  "step.started": "step_start",
  "task.plan": "plan",
  "task.wave": "wave",
  "critic.verdict": "verdict",
  "task.recovery": "recovery",
  "task.released": "released",
  "webhook.attempt": "webhook",
};

const SPECIAL = { "@plan": "plan", "@synthesis": "synthesis", "@review": "review" };

/** A history entry of a task GET in the stream's shape: {id, type, kind, status, ...detail}. */
export function fromHistory(entry) {
  const detail = { ...(entry.detail || {}) };
  const event = { id: entry.seq, kind: entry.kind, status: entry.status, at: entry.at };
  if (entry.agent) event.agent = entry.agent;
  if (entry.queue) event.queue = entry.queue;
  if ("status" in detail) {
    event.step_status = detail.status;
    delete detail.status;
  }
  return { ...detail, ...event };
}

/** A stream event ({id, type, data}) in the same shape. */
export function fromStream(event) {
  const kind = KINDS[event.type] || (event.type.startsWith("task.") ? "transition" : event.type);
  return { ...event.data, id: event.id, kind };
}

function node(iteration, key, kind, extra = {}) {
  return { id: `${iteration}:${key}`, iteration, key, kind, status: "waiting", wave: 0, depends_on: [], agent: "", ...extra };
}

export class TaskModel {
  constructor() {
    this.iterations = new Map();
    this.verdicts = new Map();
    this.status = null;
    this.lastId = 0;
    this.events = [];
  }

  iteration(n) {
    if (!this.iterations.has(n)) {
      this.iterations.set(n, {
        n,
        plan: node(n, "@plan", "plan", { agent: "coordinator" }),
        subtasks: new Map(),
        synthesis: node(n, "@synthesis", "synthesis", { agent: "coordinator" }),
        review: node(n, "@review", "review", { agent: "critic" }),
      });
    }
    return this.iterations.get(n);
  }

  /** Every node, lane by lane. */
  nodes() {
    const all = [];
    for (const lane of this.iterations.values()) {
      all.push(lane.plan, ...lane.subtasks.values(), lane.synthesis, lane.review);
    }
    return all;
  }

  find(id) {
    return this.nodes().find((n) => n.id === id) || null;
  }

  nodeOf(iteration, subtask) {
    const lane = this.iteration(iteration);
    const special = SPECIAL[subtask];
    if (special) return lane[special];
    if (!lane.subtasks.has(subtask)) lane.subtasks.set(subtask, node(iteration, subtask, "subtask"));
    return lane.subtasks.get(subtask);
  }

  /** Apply one event; answers false for one already applied (a replay after a reconnect). */
  apply(event) {
    if (event.id <= this.lastId) return false;
    this.lastId = event.id;
    this.events.push(event);
    if (event.status) this.status = event.status;
    const n = event.iteration;
    if (event.kind === "plan" && n) {
      const lane = this.iteration(n);
      for (const planned of event.subtasks || []) {
        const item = this.nodeOf(n, planned.key);
        Object.assign(item, { agent: planned.agent, wave: planned.wave || 1, depends_on: planned.depends_on || [] });
      }
      // A plan the client gave has no coordinator step: the plan node is done as given.
      if (lane.plan.status === "waiting") lane.plan.status = "given";
    } else if (event.kind === "wave" && n) {
      for (const key of event.subtasks || []) {
        const item = this.nodeOf(n, typeof key === "string" ? key : key.key);
        if (item.status === "waiting") item.status = "queued";
      }
    } else if (event.kind === "step_start" && n && event.subtask) {
      const item = this.nodeOf(n, event.subtask);
      item.status = "running";
      item.agent = event.agent || item.agent;
      item.started = event;
    } else if (event.kind === "step" && n && event.subtask) {
      const item = this.nodeOf(n, event.subtask);
      item.status = event.step_status || "completed";
      item.agent = event.agent || item.agent;
      item.step = event;
    } else if (event.kind === "verdict" && n) {
      this.verdicts.set(n, { score: event.score, feedback: event.feedback });
    } else if (event.kind === "transition" && ENDINGS.has(event.status)) {
      this.settle(event.status);
    }
    return true;
  }

  /** The task ended: what was running was stopped, what never started never will. */
  settle(status) {
    for (const item of this.nodes()) {
      if (item.status === "running") item.status = status === "cancelled" ? "cancelled" : "stopped";
      else if (!FINAL.has(item.status)) item.status = "skipped";
    }
  }

  get ended() {
    return ENDINGS.has(this.status);
  }
}
