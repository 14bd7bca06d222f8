// Pieces more than one page uses: a paged table, form fields, key-value rows.

import { call, describe } from "./api.js";
import { h, show } from "./dom.js";

/** A labelled form control; `control` is the input, select or textarea. */
export function field(label, control, hint) {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  control.id = id;
  return h("div", { class: "field" },
    h("label", { for: id }, label),
    control,
    hint ? h("small", {}, hint) : null);
}

export function select(name, options, value) {
  return h("select", { name },
    options.map(([v, label]) => h("option", { value: v, selected: v === value ? true : undefined }, label)));
}

export function badge(status) {
  return h("span", { class: `badge status-${status}` }, status);
}

/**
 * A table of one paginated API list. `path(page)` names the request; `columns` are
 * [heading, (row) => cell]. Answers {element, load(page)}.
 */
export function pagedTable({ caption, columns, path, empty = "Nothing yet." }) {
  const body = h("tbody");
  const status = h("p", { class: "pager-status", "aria-live": "polite" });
  const prev = h("button", { type: "button", class: "secondary", on: { click: () => load(page - 1) } }, "Previous");
  const next = h("button", { type: "button", class: "secondary", on: { click: () => load(page + 1) } }, "Next");
  const element = h("div", { class: "paged" },
    h("div", { class: "table-wrap" },
      h("table", {},
        h("caption", {}, caption),
        h("thead", {}, h("tr", {}, columns.map(([heading]) => h("th", { scope: "col" }, heading)))),
        body)),
    h("div", { class: "pager" }, prev, status, next));
  let page = 1;

  async function load(wanted = page) {
    page = Math.max(1, wanted);
    try {
      const { data, pagination } = await call(path(page));
      const rows = data || [];
      show(body, rows.length
        ? rows.map((row) => h("tr", {}, columns.map(([, cell]) => h("td", {}, cell(row)))))
        : h("tr", {}, h("td", { colspan: columns.length }, empty)));
      const total = pagination ? pagination.total : rows.length;
      const pages = pagination ? Math.max(1, pagination.total_pages) : 1;
      show(status, `Page ${page} of ${pages} · ${total} in all`);
      prev.disabled = page <= 1;
      next.disabled = page >= pages;
    } catch (error) {
      show(body, h("tr", {}, h("td", { colspan: columns.length, class: "error" }, describe(error))));
    }
  }

  return { element, load };
}

/** Rows of key and value inputs; answers {element, value()} with value() an object. */
export function keyValues(label) {
  const rows = h("div", { class: "kv-rows" });
  function add() {
    const key = h("input", { type: "text", "aria-label": `${label} key`, placeholder: "key", class: "kv-key" });
    const value = h("input", { type: "text", "aria-label": `${label} value`, placeholder: "value", class: "kv-value" });
    const row = h("div", { class: "kv" }, key, value,
      h("button", { type: "button", class: "secondary", "aria-label": `Remove this ${label} row`, on: { click: () => row.remove() } }, "Remove"));
    rows.append(row);
    return row;
  }
  const element = h("fieldset", { class: "kv-set" }, h("legend", {}, label), rows,
    h("button", { type: "button", class: "secondary", on: { click: () => add().querySelector("input").focus() } }, `Add ${label} entry`));
  add();
  function value() {
    const found = {};
    for (const row of rows.children) {
      const [key, val] = row.querySelectorAll("input");
      if (key.value.trim()) found[key.value.trim()] = val.value;
    }
    return found;
  }
  return { element, value };
}

/** The names of the tenant's agent types: the built-in ones and its own (GET /agent-types). */
let catalog = null;
export async function agentTypes() {
  if (!catalog) {
    const { data } = await call("/agent-types");
    catalog = data.map((type) => type.name);
  }
  return catalog;
}
