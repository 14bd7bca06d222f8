// The networks: a paged list, and a form that creates one (agents from the catalog, config).

import { call, describe, query } from "./api.js";
import { h, show, when } from "./dom.js";
import { go, notice } from "./nav.js";
import { agentTypes, field, pagedTable } from "./ui.js";

function number(name, attrs) {
  return h("input", { type: "number", name, inputmode: "decimal", ...attrs });
}

export function render(main) {
  const table = pagedTable({
    caption: "Networks, newest first",
    path: (page) => `/networks${query({ page, page_size: 10 })}`,
    empty: "No network yet: create one below.",
    columns: [
      ["Name", (n) => h("a", { href: `#/networks/${n.id}` }, n.name || "(unnamed)")],
      ["Agents", (n) => String((n.agents || []).length)],
      ["Tasks' tokens", (n) => n.usage ? String(n.usage.input_tokens + n.usage.output_tokens) : ""],
      ["Created", (n) => when(n.created_at)],
    ],
  });

  const agents = h("fieldset", { class: "agents-pick" }, h("legend", {}, "Agents (from the catalog; none checked: the default team)"));
  const error = h("p", { class: "error", role: "alert" });
  const name = h("input", { name: "name", type: "text", required: true, maxlength: 200 });
  const description = h("input", { name: "description", type: "text", maxlength: 2000 });
  const iterations = number("max_iterations", { min: 1, max: 10, step: 1, placeholder: "server default" });
  const timeout = number("timeout_seconds", { min: 1, max: 86400, step: 1, placeholder: "server default" });
  const threshold = number("quality_threshold", { min: 0, max: 1, step: 0.01, placeholder: "server default" });
  const budgetTokens = number("budget_tokens", { min: 1, step: 1, placeholder: "no limit" });
  const budgetCost = number("budget_cost", { min: 0, step: 0.01, placeholder: "no limit" });

  agentTypes().then((types) => {
    agents.append(...types.map((type) => h("label", { class: "check" },
      h("input", { type: "checkbox", name: "agent", value: type }), ` ${type}`)));
  }).catch((failure) => agents.append(h("p", { class: "error" }, describe(failure))));

  async function create(event) {
    event.preventDefault();
    show(error, "");
    const body = { name: name.value.trim(), description: description.value.trim(), config: {} };
    const picked = [...agents.querySelectorAll("input:checked")].map((box) => ({ type: box.value }));
    if (picked.length) body.agents = picked;
    if (iterations.value) body.config.max_iterations = Number(iterations.value);
    if (timeout.value) body.config.timeout_seconds = Number(timeout.value);
    if (threshold.value) body.config.quality_threshold = Number(threshold.value);
    if (budgetTokens.value || budgetCost.value) {
      body.config.budget = {};
      if (budgetTokens.value) body.config.budget.tokens = Number(budgetTokens.value);
      if (budgetCost.value) body.config.budget.cost_usd = Number(budgetCost.value);
    }
    try {
      const { data } = await call("/networks", { method: "POST", body });
      notice(`Network “${data.name}” created.`);
      go(`#/networks/${data.id}`);
    } catch (failure) {
      show(error, describe(failure));
    }
  }

  show(main,
    h("h1", {}, "Networks"),
    h("section", { class: "card" }, table.element),
    h("section", { class: "card" },
      h("h2", {}, "Create a network"),
      h("form", { id: "create-network", on: { submit: create } },
        h("div", { class: "grid2" },
          field("Name", name),
          field("Description", description)),
        agents,
        h("fieldset", {}, h("legend", {}, "Config"),
          h("div", { class: "grid3" },
            field("Max iterations", iterations),
            field("Timeout (seconds)", timeout),
            field("Quality threshold (0-1)", threshold),
            field("Budget: tokens per task", budgetTokens),
            field("Budget: cost per task (USD)", budgetCost))),
        h("div", { class: "actions" }, h("button", { type: "submit" }, "Create network")),
        error)));
  table.load(1);
  return null;
}
