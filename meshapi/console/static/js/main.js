// The console's shell: sign-in gate, hash routes (so that no id and no key is ever sent to the
// server in a page URL), and the page that is showing.

import { go, notice } from "./nav.js";
import { apiKey, signOut } from "./session.js";
import * as signin from "./signin.js";
import * as networks from "./networks.js";
import * as network from "./network.js";
import * as task from "./task.js";
import * as providers from "./providers.js";

const ROUTES = [
  [/^#\/networks\/([\w-]+)\/tasks\/([\w-]+)$/, (m) => task.render(main, m[1], m[2])],
  [/^#\/networks\/([\w-]+)$/, (m) => network.render(main, m[1])],
  [/^#\/networks$/, () => networks.render(main)],
  [/^#\/providers$/, () => providers.render(main)],
];

// What the page that is showing needs done when it goes (its event stream closed).
let leave = null;
const main = document.getElementById("main");

function route() {
  if (leave) leave();
  leave = null;
  notice("");
  const signedIn = Boolean(apiKey());
  document.getElementById("nav").hidden = !signedIn;
  if (!signedIn) {
    leave = signin.render(main, { onSignedIn: () => go(location.hash && location.hash !== "#/signin" ? location.hash : "#/networks") });
    return;
  }
  const hash = location.hash || "#/networks";
  for (const [pattern, page] of ROUTES) {
    const match = pattern.exec(hash);
    if (match) {
      leave = page(match) || null;
      main.focus({ preventScroll: true });
      return;
    }
  }
  location.hash = "#/networks";
}

document.getElementById("sign-out").addEventListener("click", () => {
  signOut();
  go("#/signin");
});

// A key that stops working (revoked, or another server) sends the user back to sign in.
document.addEventListener("mesh:unauthorized", (event) => {
  signOut();
  if (leave) leave();
  leave = signin.render(main, { onSignedIn: () => route(), error: event.detail });
  document.getElementById("nav").hidden = true;
});

window.addEventListener("hashchange", route);
route();
