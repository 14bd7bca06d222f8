// The model chain with each circuit breaker: state, failures, next probe.

import { call, describe } from "./api.js";
import { count, h, show, when } from "./dom.js";
import { badge } from "./ui.js";

export function render(main) {
  const body = h("tbody");
  const refreshed = h("p", { class: "hint", "aria-live": "polite" });

  async function load() {
    try {
      const { data } = await call("/providers");
      show(body, data.map((p) => h("tr", {},
        h("td", {}, h("code", {}, p.model)),
        h("td", {}, p.has_credentials ? "yes" : "no: skipped"),
        h("td", {}, badge(p.state)),
        h("td", {}, count(p.failures_in_window)),
        h("td", {}, count(p.total_failures)),
        h("td", {}, count(p.times_opened)),
        h("td", {}, count(p.probes)),
        h("td", {}, p.next_probe_at ? when(p.next_probe_at) : "—"),
        h("td", {}, p.last_error || ""))));
      show(refreshed, `As of ${new Date().toLocaleTimeString()}.`);
    } catch (failure) {
      show(body, h("tr", {}, h("td", { colspan: 9, class: "error" }, describe(failure))));
    }
  }

  show(main,
    h("div", { class: "heading-row" }, h("h1", {}, "Providers"),
      h("button", { type: "button", class: "secondary", on: { click: load } }, "Refresh")),
    h("section", { class: "card" },
      h("p", {}, "The default chain, first tried first, and any other model a worker has called. An open breaker skips its model until its next probe."),
      h("div", { class: "table-wrap" }, h("table", {},
        h("caption", {}, "Models and their circuit breakers"),
        h("thead", {}, h("tr", {}, ["Model", "Credentials", "Breaker", "Failures (window)", "Failures (all)", "Times opened", "Probes", "Next probe", "Last error"].map((c) => h("th", { scope: "col" }, c)))),
        body)),
      refreshed));
  load();
  return null;
}
