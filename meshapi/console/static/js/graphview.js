// The plan as SVG: one lane per iteration, left to right the coordinator's plan, the waves of
// subtasks, the synthesis and the critic's review; an edge for each dependency. Every node is
// a button (Tab, Enter) and says its status in words as well as in colour.

import { s } from "./dom.js";

const W = 148;
const H = 46;
const COL = 178;
const ROW = 58;
const LABEL = 26;
const PAD = 10;

const NAMES = { plan: "plan", synthesis: "synthesis", review: "critic" };

function columnOf(item, waves) {
  if (item.kind === "plan") return 0;
  if (item.kind === "synthesis") return waves + 1;
  if (item.kind === "review") return waves + 2;
  return Math.max(1, item.wave || 1);
}

/** Where each node of `model` goes: {items: [{item, x, y}], lanes: [{n, y, height}], width, height}. */
export function layout(model) {
  const items = [];
  const lanes = [];
  let top = 0;
  let widest = 0;
  for (const lane of model.iterations.values()) {
    const subtasks = [...lane.subtasks.values()];
    const waves = Math.max(1, ...subtasks.map((t) => t.wave || 1));
    const perColumn = new Map();
    const rows = Math.max(1, ...Array.from({ length: waves }, (_, w) => subtasks.filter((t) => (t.wave || 1) === w + 1).length));
    const height = LABEL + rows * ROW + PAD;
    for (const item of [lane.plan, ...subtasks, lane.synthesis, lane.review]) {
      const column = columnOf(item, waves);
      const row = perColumn.get(column) || 0;
      perColumn.set(column, row + 1);
      // A lone node (plan, synthesis, review) sits in the middle of its lane.
      const alone = item.kind !== "subtask";
      const y = top + LABEL + (alone ? ((rows - 1) * ROW) / 2 : row * ROW);
      items.push({ item, x: PAD + column * COL, y });
    }
    widest = Math.max(widest, waves + 3);
    lanes.push({ n: lane.n, y: top, height });
    top += height;
  }
  return { items, lanes, width: PAD * 2 + Math.max(widest, 4) * COL - (COL - W), height: Math.max(top, 80) };
}

function edges(model, where) {
  const lines = [];
  const link = (a, b) => {
    const from = where.get(a.id);
    const to = where.get(b.id);
    if (from && to) lines.push([from, to]);
  };
  for (const lane of model.iterations.values()) {
    const subtasks = [...lane.subtasks.values()];
    const needed = new Set(subtasks.flatMap((t) => t.depends_on));
    for (const t of subtasks) {
      if (!t.depends_on.length) link(lane.plan, t);
      for (const key of t.depends_on) if (lane.subtasks.has(key)) link(lane.subtasks.get(key), t);
      if (!needed.has(t.key)) link(t, lane.synthesis);
    }
    if (!subtasks.length) link(lane.plan, lane.synthesis);
    link(lane.synthesis, lane.review);
  }
  return lines.map(([a, b]) => {
    const x1 = a.x + W;
    const y1 = a.y + H / 2;
    const x2 = b.x;
    const y2 = b.y + H / 2;
    const mid = (x1 + x2) / 2;
    return s("path", { class: "edge", d: `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2 - 4},${y2}`, "marker-end": "url(#arrow)" });
  });
}

function short(text, length) {
  return text.length > length ? text.slice(0, length - 1) + "…" : text;
}

/**
 * Draw `model` into `svg`, keeping focus on the node that had it. `onPick(id)` is called when a
 * node is clicked or chosen with Enter or Space; `selected` is the id shown in the step panel.
 */
export function draw(svg, model, { selected, onPick, verdicts }) {
  const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.node : null;
  const plan = layout(model);
  const where = new Map(plan.items.map((p) => [p.item.id, p]));
  svg.replaceChildren(
    s("defs", {}, s("marker", { id: "arrow", viewBox: "0 0 8 8", refX: "7", refY: "4", markerWidth: "8", markerHeight: "8", orient: "auto" },
      s("path", { d: "M0,0 L8,4 L0,8 z", class: "arrowhead" }))),
  );
  for (const lane of plan.lanes) {
    const verdict = verdicts.get(lane.n);
    const label = `Iteration ${lane.n}` + (verdict ? ` · critic score ${verdict.score}` : "");
    svg.append(
      s("rect", { class: "lane", x: 0, y: lane.y + 2, width: plan.width, height: lane.height - 4, rx: 6 }),
      s("text", { class: "lane-label", x: PAD, y: lane.y + 18 }, label),
    );
  }
  svg.append(...edges(model, where));
  for (const { item, x, y } of plan.items) {
    const name = NAMES[item.kind] || item.key;
    const who = item.kind === "subtask" && item.agent && item.agent !== item.key ? `${name} (${item.agent})` : name;
    const pick = () => onPick(item.id);
    const group = s("g", {
      class: `node status-${item.status}` + (item.id === selected ? " selected" : ""),
      tabindex: 0,
      role: "button",
      "aria-label": `${who}, iteration ${item.iteration}: ${item.status}`,
      "aria-pressed": item.id === selected ? "true" : "false",
      dataset: { node: item.id, status: item.status, kind: item.kind },
      transform: `translate(${x},${y})`,
      on: {
        click: pick,
        keydown: (event) => {
          if (event.key === "Enter" || event.key === " ") {
            event.preventDefault();
            pick();
          }
        },
      },
    },
    s("title", {}, `${who}: ${item.status}`),
    s("rect", { width: W, height: H, rx: 6 }),
    s("text", { x: 10, y: 19, class: "node-name" }, short(who, 20)),
    s("text", { x: 10, y: 36, class: "node-status" }, item.status));
    svg.append(group);
  }
  svg.setAttribute("viewBox", `0 0 ${plan.width} ${plan.height}`);
  svg.setAttribute("width", plan.width);
  svg.setAttribute("height", plan.height);
  if (focused) {
    const again = svg.querySelector(`[data-node="${CSS.escape(focused)}"]`);
    if (again) again.focus();
  }
}
