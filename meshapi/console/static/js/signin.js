// Sign in: the key is checked with one read of the API before it is kept for this tab.

import { call, describe } from "./api.js";
import { h, show } from "./dom.js";
import { signIn, signOut } from "./session.js";

export function render(main, { onSignedIn, error } = {}) {
  const message = h("p", { id: "signin-error", class: "error", role: "alert" });
  const input = h("input", {
    id: "api-key", name: "api-key", type: "password", autocomplete: "off", spellcheck: "false",
    required: true, "aria-describedby": "signin-help signin-error",
  });
  const button = h("button", { type: "submit" }, "Sign in");
  const form = h("form", { class: "card narrow", on: { submit } },
    h("h1", {}, "Sign in"),
    h("p", { id: "signin-help" }, "Paste an API key (mesh_…). It is kept in this tab only and sent as a bearer header to the API; `mesh keys create` makes one."),
    h("label", { for: "api-key" }, "API key"),
    input,
    h("div", { class: "actions" }, button),
    message);
  if (error) show(message, `That key was refused (${describe(error)}). Sign in again.`);

  async function submit(event) {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) return;
    button.disabled = true;
    show(message, "");
    signIn(key);
    try {
      // Any read shows whether the API takes the key and lets it read.
      await call("/networks?page_size=1", { quiet: true });
      onSignedIn();
    } catch (failure) {
      signOut();
      show(message, failure.status === 401 || failure.status === 403
        ? `The API refused this key: ${failure.message}`
        : `Could not sign in: ${describe(failure)}`);
      button.disabled = false;
      input.focus();
    }
  }

  show(main, form);
  input.focus();
  return null;
}
