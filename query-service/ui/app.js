// The session explorer: hash routes, the read token, and the views.
//
// Routes: #/sessions?range=…&category=…&live=1, #/sessions/<id>,
// #/rejects?range=…&code=…&client=…. A link may carry the token once, as
// #token=<read token> or as a `token` parameter of any route: it is moved
// into sessionStorage and removed from the address bar (and history) at once.

import * as api from "./api.js";
import { el, replace, status } from "./dom.js";
import { sessionsView } from "./sessions.js";
import { timelineView } from "./timeline.js";
import { rejectsView } from "./rejects.js";

const main = document.getElementById("main");
const forget = document.getElementById("forget");
let cleanup = null;

function takeTokenFromFragment() {
  // "#token=<t>" or a route with "?token=<t>" ("#/sessions/<id>?token=<t>").
  const hash = location.hash.replace(/^#/, "");
  const [path, query = ""] = hash.startsWith("token=") ? ["/sessions", hash] : hash.split("?");
  const params = new URLSearchParams(query);
  const value = (params.get("token") || "").trim();
  if (!params.has("token")) return;
  if (value) api.setToken(value);
  params.delete("token");
  const rest = params.toString();
  history.replaceState(null, "", location.pathname + location.search + "#" + (path || "/sessions") + (rest ? "?" + rest : ""));
}

function tokenForm(message) {
  const input = el("input", { id: "token", type: "password", autocomplete: "off", required: true, spellcheck: "false" });
  const form = el("form", { class: "token-form" },
    el("h2", {}, "Read token"),
    message ? el("p", { class: "error", role: "alert" }, message) : null,
    el("p", {}, "The explorer reads through the query service's API with a read token (locally: ",
      el("code", {}, "eye_demo_read_token"), "). It is kept in this tab only (sessionStorage)."),
    el("label", { for: "token" }, "Read token"),
    el("div", { class: "row" }, input, el("button", { type: "submit" }, "Use token")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!input.value.trim()) return;
    api.setToken(input.value.trim());
    route();
  });
  replace(main, form);
  input.focus();
}

/** Called by a view when the API refused the token. */
function unauthorized() {
  api.forgetToken();
  stop();
  tokenForm("The query service refused this token (401). Enter a read token.");
}

function stop() {
  if (cleanup) cleanup();
  cleanup = null;
}

function route() {
  stop();
  const hash = location.hash.replace(/^#/, "") || "/sessions";
  const [path, query = ""] = hash.split("?");
  const params = new URLSearchParams(query);
  const parts = path.split("/").filter(Boolean);
  const view = parts[0] === "rejects" ? "rejects" : "sessions";
  for (const link of document.querySelectorAll("nav a")) {
    if (link.dataset.view === view && parts.length === 1) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  forget.hidden = !api.token();
  if (!api.token()) {
    tokenForm();
    return;
  }
  status("");
  // The same hash again (e.g. "Show" without a change) fires no hashchange: reload the view.
  const navigate = (h) => {
    if (location.hash === h) route();
    else location.hash = h;
  };
  const ctx = { unauthorized, navigate };
  if (parts[0] === "sessions" && parts[1]) {
    cleanup = timelineView(main, decodeURIComponent(parts[1]), params, ctx);
  } else if (view === "rejects") {
    cleanup = rejectsView(main, params, ctx);
  } else {
    cleanup = sessionsView(main, params, ctx);
  }
}

forget.addEventListener("click", () => {
  api.forgetToken();
  route();
});
window.addEventListener("hashchange", () => {
  takeTokenFromFragment();
  route();
});
takeTokenFromFragment();
route();
