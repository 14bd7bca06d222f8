// Moving between pages, and the one line that tells the user what just happened.

import { show } from "./dom.js";

export function go(hash) {
  if (location.hash === hash) window.dispatchEvent(new HashChangeEvent("hashchange"));
  else location.hash = hash;
}

export function notice(text, { error = false } = {}) {
  const region = document.getElementById("notice");
  region.classList.toggle("error", error);
  show(region, text || "");
}
