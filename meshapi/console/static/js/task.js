// A task's page: its plan drawn live from the event stream, a step's details, the critic's
// verdicts, the history, usage against the budget, cancel, and the answer as safe Markdown.

import { call, describe } from "./api.js";
import { clock, count, h, money, show, when } from "./dom.js";
import { draw } from "./graphview.js";
import { render as markdown } from "./markdown.js";
import { notice } from "./nav.js";
import { follow } from "./sse.js";
import { badge } from "./ui.js";
import { describeEvent } from "./timeline.js";
import { ENDINGS, TaskModel, fromHistory, fromStream } from "./taskmodel.js";

const REFRESH_MS = 600; // a burst of events costs one conditional GET, not one each

function facts(pairs) {
  return h("dl", { class: "facts" }, pairs.filter(([, v]) => v !== undefined && v !== null && v !== "")
    .map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]));
}

export function render(main, networkId, taskId) {
  const path = `/networks/${networkId}/tasks/${taskId}`;
  const model = new TaskModel();
  let task = null;
  let network = null;
  let etag = null;
  let selected = null;
  let stop = null;
  let timer = null;
  let gone = false;

  const title = h("h1", { class: "task-title" }, "Task");
  const status = h("span", { class: "task-status", "aria-live": "polite" });
  const stream = h("span", { class: "stream-state", "aria-live": "polite" });
  const cancel = h("button", { type: "button", class: "danger", id: "cancel-task", disabled: true, on: { click: cancelTask } }, "Cancel task");
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("role", "group");
  svg.setAttribute("aria-label", "The task's plan: one lane per iteration");
  svg.classList.add("graph");
  const step = h("div", { class: "step-panel", id: "step", tabindex: "-1", "aria-live": "polite" },
    h("p", { class: "hint" }, "Choose a node of the graph (click, or Tab then Enter) to see its step."));
  const verdicts = h("tbody");
  const usage = h("div");
  const answer = h("div", { class: "answer", id: "answer" }, h("p", { class: "hint" }, "The answer shows here when the task has one."));
  const timeline = h("ol", { class: "timeline", id: "timeline" });
  const context = h("div");
  const root = h("div", { class: "task-page", dataset: { taskStatus: "", events: "0", stream: "" } },
    h("p", { class: "crumbs" }, h("a", { href: "#/networks" }, "Networks"), " / ",
      h("a", { href: `#/networks/${networkId}` }, "network"), " / task"),
    h("div", { class: "heading-row" }, title, h("div", { class: "heading-side" }, status, stream, cancel)),
    h("div", { class: "task-grid" },
      h("section", { class: "card graph-card", "aria-labelledby": "plan-title" },
        h("h2", { id: "plan-title" }, "Plan"),
        h("div", { class: "legend", "aria-hidden": "true" },
          ["waiting", "queued", "running", "completed", "failed", "cancelled", "skipped"].map((s) => h("span", { class: `badge status-${s}` }, s))),
        h("div", { class: "graph-wrap" }, svg)),
      h("section", { class: "card step-card", "aria-labelledby": "step-title" },
        h("h2", { id: "step-title" }, "Step"), step)),
    h("div", { class: "task-grid" },
      h("section", { class: "card" }, h("h2", {}, "Answer"), answer),
      h("section", { class: "card" },
        h("h2", {}, "Critic"),
        h("div", { class: "table-wrap" }, h("table", {}, h("caption", {}, "Score and feedback per iteration"),
          h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Iteration"), h("th", { scope: "col" }, "Score"), h("th", { scope: "col" }, "Feedback"))),
          verdicts)),
        h("h2", {}, "Usage and budget"), usage,
        h("h2", {}, "Context"), context)),
    h("section", { class: "card" }, h("h2", {}, "History"), h("div", { class: "timeline-wrap" }, timeline)));

  function redraw() {
    draw(svg, model, { selected, onPick: pick, verdicts: model.verdicts });
    root.dataset.events = String(model.events.length);
    const current = model.status || (task && task.status) || "";
    root.dataset.taskStatus = current;
    show(status, badge(current));
    cancel.disabled = !current || ENDINGS.has(current);
    show(verdicts, [...model.verdicts.entries()].map(([n, v]) =>
      h("tr", {}, h("td", {}, String(n)), h("td", {}, String(v.score)), h("td", {}, v.feedback))));
  }

  function addToTimeline(event) {
    const [what, text] = describeEvent(event);
    const wrap = timeline.parentElement;
    const atEnd = !wrap || wrap.scrollHeight - wrap.scrollTop - wrap.clientHeight < 40;
    timeline.append(h("li", { class: `kind-${event.kind}` },
      h("time", { datetime: event.at || "" }, clock(event.at)), " ", h("strong", {}, what), " ", text));
    if (wrap && atEnd) wrap.scrollTop = wrap.scrollHeight;
  }

  function apply(event) {
    if (!model.apply(event)) return;
    addToTimeline(event);
  }

  function pick(id) {
    selected = id;
    redraw();
    showStep();
  }

  function showStep() {
    const item = selected && model.find(selected);
    if (!item) return;
    const ran = item.step || {};
    const started = item.started || {};
    const recorded = item.kind === "subtask" && task
      ? (task.subtasks || []).find((t) => t.iteration === item.iteration && t.key === item.key) : null;
    const full = (recorded && recorded.step) || {};
    const usageOf = full.usage || { input_tokens: ran.input_tokens, output_tokens: ran.output_tokens, cost_usd: ran.cost_usd };
    const name = { plan: "Plan", synthesis: "Synthesis", review: "Critic's review" }[item.kind] || `Subtask ${item.key}`;
    let output = full.output ?? ran.excerpt ?? "";
    const last = task && task.result && task.result.iteration === item.iteration;
    if (item.kind === "synthesis" && last && task.result.answer) output = task.result.answer;
    const verdict = item.kind === "review" ? model.verdicts.get(item.iteration) : null;
    const memoryRead = full.memory_read;
    show(step,
      h("h3", {}, `${name} · iteration ${item.iteration}`),
      facts([
        ["Status", badge(item.status)],
        ["Description", recorded ? recorded.description : ""],
        ["Agent", item.agent],
        ["Queue", full.queue || ran.queue || started.queue || ""],
        ["Worker", full.worker || ran.worker || ""],
        ["Model", full.model || ran.model || ""],
        ["Tokens", usageOf.input_tokens !== undefined ? `${count(usageOf.input_tokens)} in / ${count(usageOf.output_tokens)} out` : ""],
        ["Cost", money(usageOf.cost_usd)],
        ["Latency", (full.latency_ms ?? ran.latency_ms) !== undefined ? `${full.latency_ms ?? ran.latency_ms} ms` : ""],
        ["Attempt", ran.attempt ?? started.attempt],
        ["Depends on", item.depends_on.length ? item.depends_on.join(", ") : ""],
        ["Error", full.error || ran.error || ""],
      ]),
      verdict ? [h("h4", {}, `Verdict: ${verdict.score}`), h("p", { class: "feedback" }, verdict.feedback)] : null,
      h("h4", {}, "Memory read"),
      memoryRead === undefined
        ? h("p", { class: "hint" }, item.kind === "subtask" ? "Not recorded yet." : "The API lists memory read for subtasks only.")
        : memoryRead.length ? h("ul", { class: "memory-read" }, memoryRead.map((id) => h("li", {}, h("code", {}, id)))) : h("p", {}, "None."),
      h("h4", {}, full.output !== undefined || (item.kind === "synthesis" && last) ? "Output" : "Output (first 500 characters)"),
      output ? h("pre", { class: "output" }, output) : h("p", { class: "hint" }, "No output yet."));
  }

  function details() {
    if (!task) return;
    show(title, task.description.length > 140 ? task.description.slice(0, 139) + "…" : task.description);
    title.setAttribute("title", task.description);
    const u = task.usage || {};
    const budget = network && network.config && network.config.budget;
    const spent = (u.input_tokens || 0) + (u.output_tokens || 0);
    show(usage, facts([
      ["Tokens", `${count(u.input_tokens)} in / ${count(u.output_tokens)} out`],
      ["Cost", money(u.cost_usd)],
      ["Token budget", budget && budget.tokens ? `${count(spent)} of ${count(budget.tokens)} (${Math.round((100 * spent) / budget.tokens)}%)` : "none"],
      ["Cost budget", budget && budget.cost_usd ? `${money(u.cost_usd)} of ${money(budget.cost_usd)}` : "none"],
      ["Priority", task.priority],
      ["Submitted", when(task.created_at)],
      ["Deadline", when(task.deadline_at)],
    ]));
    const pairs = Object.entries(task.context || {});
    show(context, pairs.length ? facts(pairs.map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)])) : h("p", { class: "hint" }, "None."));
    const result = task.result;
    if (result && result.answer) {
      show(answer,
        h("p", { class: "answer-meta" }, `Iteration ${result.iteration}`,
          result.score !== undefined && result.score !== null ? ` · score ${result.score}` : "",
          result.partial ? " · partial: the task did not finish" : ""),
        h("div", { class: "markdown" }, markdown(result.answer)),
        result.feedback ? [h("h3", {}, "Critic's feedback"), h("p", { class: "feedback" }, result.feedback)] : null);
    } else if (task.error) {
      show(answer, h("p", { class: "error" }, task.error));
    }
    if (selected) showStep();
  }

  async function refresh() {
    if (gone) return;
    try {
      const answer_ = await call(path, { extra: etag ? { "If-None-Match": etag } : {} });
      if (answer_.status === 304) return;
      task = answer_.data;
      etag = answer_.headers.get("ETag");
      // The GET may hold events the stream has not brought yet: they are the same log.
      for (const entry of task.history || []) apply(fromHistory(entry));
      redraw();
      details();
    } catch (failure) {
      notice(describe(failure), { error: true });
    }
  }

  function later() {
    if (!timer) timer = setTimeout(() => { timer = null; refresh(); }, REFRESH_MS);
  }

  function onEvent(raw) {
    apply(fromStream(raw));
    redraw();
    if (ENDINGS.has(model.status)) refresh();
    else later();
  }

  function onState(state, detail) {
    root.dataset.stream = state;
    const words = { live: "live", reconnecting: `reconnecting in ${Math.round((detail || 0) / 1000)} s`, ended: "ended", error: `stream: ${detail}` };
    show(stream, words[state] || state);
  }

  async function cancelTask() {
    cancel.disabled = true;
    try {
      await call(`${path}/cancel`, { method: "POST" });
      notice("Task cancelled.");
    } catch (failure) {
      notice(failure.status === 409 ? "The task had already ended." : describe(failure), { error: failure.status !== 409 });
    }
    refresh();
  }

  async function start() {
    try {
      const [loaded, owner] = await Promise.all([call(path), call(`/networks/${networkId}`).catch(() => null)]);
      task = loaded.data;
      etag = loaded.headers.get("ETag");
      network = owner && owner.data;
    } catch (failure) {
      show(main, h("h1", {}, "Task"), h("p", { class: "error", role: "alert" }, describe(failure)));
      return;
    }
    for (const entry of task.history || []) apply(fromHistory(entry));
    redraw();
    details();
    if (gone) return;
    if (ENDINGS.has(task.status)) {
      onState("ended");
      return;
    }
    stop = follow(`${path}/events`, { lastEventId: model.lastId, onEvent, onState });
  }

  show(main, root);
  redraw();
  start();
  return () => {
    gone = true;
    if (stop) stop();
    clearTimeout(timer);
  };
}
