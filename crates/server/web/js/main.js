// The app shell: sign in with a token (exchanged for a session cookie), pick or create an
// app from a template, then the builder. The location hash keeps the open app across reloads.
import { api, ApiError } from "./api.js";
import { Builder } from "./builder.js";
import { h, replace, timeEl } from "./dom.js";
import { clearErrors, showError } from "./notices.js";

const main = document.getElementById("main");
let builder = null;
const nav = document.getElementById("nav");

function view(name) {
  document.body.dataset.view = name;
}

async function route() {
  clearErrors();
  if (builder) builder.dispose();
  builder = null;
  let apps;
  try {
    apps = await api("GET", "/admin/apps");
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return signIn();
    return showError(err, "Loading apps");
  }
  replace(nav, h("button", { type: "button", id: "sign-out", class: "link", onclick: signOut }, "Sign out"));
  const open = location.hash.match(/^#\/apps\/([0-9a-f-]+)/i);
  if (open) {
    try {
      const app = await api("GET", `/admin/apps/${open[1]}`);
      view("builder");
      document.title = `${app.name} · draftsmith`;
      builder = new Builder(main, app);
      await builder.load();
    } catch (err) {
      showError(err, "Opening the app");
    }
    return;
  }
  document.title = "draftsmith";
  picker(apps.apps);
}

function signIn(message) {
  view("signin");
  replace(nav);
  const token = h("input", { id: "token", type: "password", autocomplete: "current-password", required: true });
  const form = h("form", { id: "signin", class: "card narrow", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title" }, "Sign in"),
    h("p", { class: "muted" }, "Paste an access token (", h("code", {}, "draftsmith token create"), " makes one)."),
    h("label", { for: "token" }, "Access token"),
    token,
    h("button", { type: "submit", class: "primary", id: "signin-submit" }, "Sign in"),
    message ? h("p", { class: "muted" }, message) : null);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors();
    try {
      await api("POST", "/auth/session", { token: token.value });
      route();
    } catch (err) {
      showError(err, "Sign in");
      token.focus();
    }
  });
  replace(main, form);
  token.focus();
}

async function signOut() {
  try {
    await api("DELETE", "/auth/session");
  } catch (err) {
    showError(err, "Sign out");
  }
  location.hash = "";
  signIn("Signed out.");
}

async function picker(apps) {
  view("apps");
  const name = h("input", { id: "app-name", required: true, maxlength: 100, placeholder: "My app" });
  const template = h("select", { id: "app-template" });
  try {
    const t = await api("GET", "/admin/templates");
    replace(template, t.templates.map((x) => h("option", { value: x.id }, `${x.id} — ${x.description}`)));
  } catch (err) {
    showError(err, "Templates");
  }
  const form = h("form", { id: "new-app", class: "card", "aria-labelledby": "new-app-title" },
    h("h2", { id: "new-app-title" }, "New app"),
    h("label", { for: "app-name" }, "Name"), name,
    h("label", { for: "app-template" }, "Template"), template,
    h("button", { type: "submit", class: "primary", id: "create-app" }, "Create app"));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const app = await api("POST", "/admin/apps", { name: name.value, template: template.value });
      location.hash = `#/apps/${app.id}`;
    } catch (err) {
      showError(err, "Creating the app");
    }
  });
  replace(main,
    h("section", { class: "apps", "aria-labelledby": "apps-title" },
      h("h1", { id: "apps-title" }, "Your apps"),
      apps.length
        ? h("ul", { class: "app-list" }, apps.map((a) =>
          h("li", {}, h("a", { href: `#/apps/${a.id}`, class: "app-link" }, a.name), " ",
            h("span", { class: "muted" }, `${a.template} · revision ${a.draft_revision} · `), timeEl(a.updated_at))))
        : h("p", { class: "muted" }, "No apps yet."),
      form));
}

window.addEventListener("hashchange", route);
window.addEventListener("draftsmith:unauthorized", () => {
  if (document.body.dataset.view === "signin") return;
  if (builder) builder.dispose();
  builder = null;
  signIn("Your session has ended; sign in again to go on where you were.");
});
route();
