// A network: its agents with status and metrics, its tasks and memory (filtered, paged), a
// form that submits a task, and delete with a confirmation.

import { call, describe, query } from "./api.js";
import { count, h, money, show, when } from "./dom.js";
import { go, notice } from "./nav.js";
import { submitForm } from "./submit.js";
import { badge, field, pagedTable, select } from "./ui.js";

const STATUSES = ["queued", "planning", "running", "synthesizing", "reviewing", "completed", "failed", "cancelled", "timed_out"];
const MEMORY_TYPES = ["fact", "context", "decision", "feedback"];

export function render(main, networkId) {
  const base = `/networks/${networkId}`;
  const title = h("h1", {}, "Network");
  const summary = h("div", { class: "summary" });
  const confirm = h("div", { class: "confirm", hidden: true, role: "group", "aria-label": "Confirm delete" });

  const agents = pagedTable({
    caption: "Agents, in the order added",
    path: (page) => `${base}/agents${query({ page, page_size: 10 })}`,
    columns: [
      ["Name", (a) => a.name],
      ["Type", (a) => a.type],
      ["Queue", (a) => a.queue],
      ["Status", (a) => badge(a.status)],
      ["Calls", (a) => count(a.metrics.calls)],
      ["Failures", (a) => count(a.metrics.failures)],
      ["Mean latency", (a) => `${a.metrics.mean_latency_ms ?? 0} ms`],
      ["Tokens in / out", (a) => `${count(a.metrics.input_tokens)} / ${count(a.metrics.output_tokens)}`],
      ["Cost", (a) => money(a.metrics.cost_usd)],
    ],
  });

  const taskStatus = select("status", [["", "any status"], ...STATUSES.map((s) => [s, s])], "");
  const tasks = pagedTable({
    caption: "Tasks, newest first",
    path: (page) => `${base}/tasks${query({ page, page_size: 10, status: taskStatus.value })}`,
    empty: "No task here yet.",
    columns: [
      ["Task", (t) => h("a", { href: `#/networks/${networkId}/tasks/${t.id}` }, t.description.slice(0, 90) || t.id)],
      ["Status", (t) => badge(t.status)],
      ["Priority", (t) => t.priority],
      ["Iteration", (t) => String(t.iteration)],
      ["Submitted", (t) => when(t.created_at)],
    ],
  });
  taskStatus.addEventListener("change", () => tasks.load(1));

  const memoryType = select("type", [["", "any type"], ...MEMORY_TYPES.map((t) => [t, t])], "");
  const minConfidence = h("input", { type: "number", name: "min_confidence", min: 0, max: 1, step: 0.05, placeholder: "0" });
  const memoryTask = h("input", { type: "text", name: "task_id", placeholder: "a task id", spellcheck: "false" });
  const memory = pagedTable({
    caption: "Shared memory, newest first",
    path: (page) => `${base}/memory${query({ page, page_size: 10, type: memoryType.value, min_confidence: minConfidence.value, task_id: memoryTask.value.trim() })}`,
    empty: "No memory item matches.",
    columns: [
      ["Type", (m) => m.type],
      ["Confidence", (m) => String(m.confidence)],
      ["Content", (m) => h("span", { class: "content" }, m.content)],
      ["Source", (m) => (m.metadata && m.metadata.source_agent) || ""],
      ["Task", (m) => (m.metadata && m.metadata.task_id)
        ? h("a", { href: `#/networks/${networkId}/tasks/${m.metadata.task_id}` }, m.metadata.task_id.slice(0, 8)) : ""],
      ["Written", (m) => when(m.created_at)],
    ],
  });
  const memoryFilters = h("form", { class: "filters", on: { submit: (e) => { e.preventDefault(); memory.load(1); } } },
    field("Type", memoryType), field("Min confidence", minConfidence), field("Task", memoryTask),
    h("button", { type: "submit", class: "secondary" }, "Filter"));

  async function remove() {
    try {
      await call(base, { method: "DELETE" });
      notice("Network deleted, with its agents, tasks and memory.");
      go("#/networks");
    } catch (failure) {
      notice(describe(failure), { error: true });
    }
  }

  function ask() {
    show(confirm,
      h("p", {}, "Delete this network with its agents, tasks and memory? This cannot be undone."),
      h("button", { type: "button", class: "danger", id: "confirm-delete", on: { click: remove } }, "Delete it"),
      h("button", { type: "button", class: "secondary", on: { click: () => { confirm.hidden = true; deleteButton.focus(); } } }, "Keep it"));
    confirm.hidden = false;
    confirm.querySelector("button").focus();
  }
  const deleteButton = h("button", { type: "button", class: "danger", id: "delete-network", on: { click: ask } }, "Delete network…");

  async function loadNetwork() {
    try {
      const { data } = await call(base);
      show(title, data.name || "Network");
      const c = data.config || {};
      const budget = c.budget ? [c.budget.tokens ? `${count(c.budget.tokens)} tokens` : null, c.budget.cost_usd ? money(c.budget.cost_usd) : null].filter(Boolean).join(", ") : "";
      show(summary, h("dl", { class: "facts" },
        h("dt", {}, "Id"), h("dd", {}, h("code", {}, data.id)),
        data.description ? [h("dt", {}, "Description"), h("dd", {}, data.description)] : null,
        h("dt", {}, "Iterations"), h("dd", {}, `at most ${c.max_iterations}`),
        h("dt", {}, "Quality threshold"), h("dd", {}, String(c.quality_threshold)),
        h("dt", {}, "Timeout"), h("dd", {}, `${c.timeout_seconds} s`),
        h("dt", {}, "Budget per task"), h("dd", {}, budget || "none"),
        h("dt", {}, "Usage"), h("dd", {}, `${count(data.usage.input_tokens)} in / ${count(data.usage.output_tokens)} out tokens, ${money(data.usage.cost_usd)}`)));
      return data;
    } catch (failure) {
      show(summary, h("p", { class: "error" }, describe(failure)));
      return null;
    }
  }

  show(main,
    h("p", { class: "crumbs" }, h("a", { href: "#/networks" }, "Networks"), " / this network"),
    h("div", { class: "heading-row" }, title, deleteButton),
    confirm,
    h("section", { class: "card" }, summary),
    h("section", { class: "card", "aria-labelledby": "submit-title" },
      h("h2", { id: "submit-title" }, "Submit a task"),
      submitForm(networkId)),
    h("section", { class: "card" }, h("h2", {}, "Tasks"),
      h("div", { class: "filters" }, field("Status", taskStatus)), tasks.element),
    h("section", { class: "card" }, h("h2", {}, "Agents"), agents.element),
    h("section", { class: "card" }, h("h2", {}, "Memory"), memoryFilters, memory.element));
  loadNetwork();
  agents.load(1);
  tasks.load(1);
  memory.load(1);
  return null;
}
