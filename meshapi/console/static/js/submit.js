// The form that submits a task: description, context as key-values, priority and an optional
// plan of subtasks. On 202 it goes to the task's page.

import { call, describe } from "./api.js";
import { h, show } from "./dom.js";
import { go } from "./nav.js";
import { agentTypes, field, keyValues, select } from "./ui.js";

const PLANNERS = new Set(["coordinator", "critic"]); // they plan and review, never take subtasks

function planRow(specialists) {
  const row = h("div", { class: "plan-row" },
    h("input", { type: "text", class: "plan-key", "aria-label": "Subtask key", placeholder: "key (e.g. facts)" }),
    select("agent", specialists.map((t) => [t, t]), specialists[0]),
    h("input", { type: "text", class: "plan-description", "aria-label": "Subtask description", placeholder: "what to do" }),
    h("input", { type: "text", class: "plan-depends", "aria-label": "Depends on (keys, comma-separated)", placeholder: "depends on: key, key" }),
    h("button", { type: "button", class: "secondary", "aria-label": "Remove this subtask", on: { click: () => row.remove() } }, "Remove"));
  row.querySelector("select").setAttribute("aria-label", "Subtask agent");
  return row;
}

export function submitForm(networkId) {
  const error = h("p", { class: "error", role: "alert" });
  const description = h("textarea", { name: "description", rows: 3, required: true, maxlength: 10000 });
  const context = keyValues("context");
  const priority = select("priority", [["low", "low"], ["normal", "normal"], ["high", "high"]], "normal");
  const rows = h("div", { class: "plan-rows" });
  async function addStep() {
    const specialists = (await agentTypes()).filter((t) => !PLANNERS.has(t));
    const row = planRow(specialists);
    rows.append(row);
    row.querySelector("input").focus();
  }
  const button = h("button", { type: "submit" }, "Submit task");

  function plan() {
    return [...rows.children].map((row) => ({
      key: row.querySelector(".plan-key").value.trim(),
      agent: row.querySelector("select").value,
      description: row.querySelector(".plan-description").value.trim(),
      depends_on: row.querySelector(".plan-depends").value.split(",").map((k) => k.trim()).filter(Boolean),
    }));
  }

  async function submit(event) {
    event.preventDefault();
    show(error, "");
    const body = { description: description.value.trim(), context: context.value(), priority: priority.value };
    const steps = plan();
    if (steps.length) body.plan = steps;
    button.disabled = true;
    try {
      const { data } = await call(`/networks/${networkId}/tasks`, { method: "POST", body });
      go(`#/networks/${networkId}/tasks/${data.id}`);
    } catch (failure) {
      show(error, describe(failure));
      button.disabled = false;
    }
  }

  return h("form", { id: "submit-task", on: { submit } },
    field("Description", description),
    context.element,
    field("Priority", priority),
    h("fieldset", { class: "plan-set" },
      h("legend", {}, "Plan (optional: without one the coordinator plans)"),
      rows, h("button", { type: "button", class: "secondary", on: { click: addStep } }, "Add a subtask")),
    h("div", { class: "actions" }, button),
    error);
}
