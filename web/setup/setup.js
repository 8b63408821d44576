// The setup wizard: shows the database status, runs POST /api/db/setup, then offers to
// create the administrator account (POST /api/auth/email/register) until one exists.
"use strict";

(function () {
  const states = ["loading", "unreachable", "starting", "unavailable", "refused", "incomplete", "ready", "done"];
  // While the backend brings a set-up database up (or waits for PostgreSQL), poll.
  const POLL_MS = 2000;
  let pollTimer = null;
  const $ = (id) => document.getElementById(id);

  function show(state, focus) {
    for (const name of states) {
      $("state-" + name).hidden = name !== state;
    }
    if (focus) {
      const heading = document.querySelector("#state-" + state + " h2");
      if (heading) heading.focus();
    }
  }

  function hideError() {
    $("error").hidden = true;
    $("error-message").textContent = "";
  }

  function showError(message) {
    $("error-message").textContent = message;
    $("error").hidden = false;
    $("error-title").focus();
  }

  function announce(text) {
    $("outcome").textContent = text;
  }

  async function readJson(response) {
    try {
      return await response.json();
    } catch (_) {
      return {};
    }
  }

  function pollLater() {
    clearTimeout(pollTimer);
    pollTimer = setTimeout(() => loadStatus(false, true), POLL_MS);
  }

  async function loadStatus(focus, quiet) {
    clearTimeout(pollTimer);
    if (!quiet) show("loading", false);
    hideError();
    try {
      const response = await fetch("/api/db/status", { cache: "no-store", headers: { Accept: "application/json" } });
      const status = await readJson(response);
      if (!response.ok) throw new Error(status.message || status.error || "HTTP " + response.status);
      // `state` (our addition) tells a set-up deployment without its database apart from
      // one that needs setup; an upstream-shaped answer falls back to the three fields.
      const state = status.state || (status.initialized ? "ready" : status.configured ? "setup_required" : "not_configured");
      if (state === "refused" || (status.reason && status.initialized)) {
        // A wrong encryption secret (at start, or rotated by another process since).
        $("refused-text").textContent = status.reason || "Check the backend logs.";
        show("refused", focus);
      } else if (status.initialized || state === "ready") {
        show("done", focus);
        loadAccounts(false);
      } else if (state === "not_configured") {
        show("incomplete", focus);
      } else if (state === "starting") {
        show("starting", focus);
        pollLater();
      } else if (state === "database_unavailable") {
        show("unavailable", focus);
        pollLater();
      } else {
        describeDatabase(status.database);
        show("ready", focus);
      }
    } catch (error) {
      $("unreachable-detail").textContent = "Could not read /api/db/status: " + error.message;
      show("unreachable", true);
    }
  }

  async function runSetup() {
    const button = $("setup-button");
    button.disabled = true;
    button.setAttribute("aria-disabled", "true");
    $("progress").hidden = false;
    $("state-ready").setAttribute("aria-busy", "true");
    hideError();
    announce("");
    try {
      const response = await fetch("/api/db/setup", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ type: "postgresql" }),
      });
      const body = await readJson(response);
      if (response.ok || response.status === 409) {
        $("restart-notice").hidden = !body.restart_required;
        $("restart-text").textContent = body.restart_required ? body.message : "";
        show("done", true);
        announce(response.ok ? "Database setup completed." : "The database was already set up.");
        loadAccounts(false);
        return;
      }
      const detail = [body.error, body.message].filter(Boolean).join(": ");
      showError(detail || "The server answered HTTP " + response.status + ".");
    } catch (error) {
      showError("The backend could not be reached: " + error.message);
    } finally {
      button.disabled = false;
      button.removeAttribute("aria-disabled");
      $("progress").hidden = true;
      $("state-ready").removeAttribute("aria-busy");
    }
  }

  // The card says which database is in use, and for the embedded one what production needs.
  function describeDatabase(database) {
    if (!database) return;
    const embedded = database.kind === "embedded";
    $("pg-title").textContent = embedded ? "Embedded PostgreSQL" : "PostgreSQL at " + database.target;
    $("pg-desc").textContent = embedded
      ? "This server runs its own PostgreSQL (" + database.target + ", under PERSISTENT_DATA_DIR/postgres): right for trying DeployStack out."
      : "The server named by the POSTGRES_* environment variables: right for production.";
    $("pg-production").hidden = !embedded;
    $("pg-badge").textContent = embedded ? "For trying out" : "Production";
  }

  function showFrontend(url) {
    if (!/^https?:\/\//i.test(url || "")) url = null;
    $("next-frontend").hidden = !url;
    $("no-frontend").hidden = Boolean(url);
    if (url) {
      $("frontend-link").href = url;
      $("frontend-link").textContent = url;
    }
  }

  const adminSteps = ["admin-form-step", "admin-signed-in", "admin-exists", "accounts-unknown"];
  const adminFields = ["username", "email", "password", "token"];

  function showAdmin(step, focusId) {
    for (const id of adminSteps) $(id).hidden = id !== step;
    if (focusId) $(focusId).focus();
  }

  function clearFieldErrors() {
    for (const field of adminFields) {
      $("admin-" + field + "-error").hidden = true;
      $("admin-" + field + "-error").textContent = "";
      $("admin-" + field).removeAttribute("aria-invalid");
    }
  }

  // After setup: the administrator step while no administrator exists, else who is signed in.
  async function loadAccounts(focus) {
    try {
      const response = await fetch("/api/auth/status", { cache: "no-store", headers: { Accept: "application/json" } });
      const status = await readJson(response);
      if (!response.ok) throw new Error(status.error || "HTTP " + response.status);
      showFrontend(status.frontend_url);
      if (!status.administrator_exists) {
        showAdmin("admin-form-step", focus ? "admin-title" : null);
        return;
      }
      const me = await fetch("/api/users/me", { cache: "no-store", headers: { Accept: "application/json" } });
      const body = await readJson(me);
      if (me.ok && body.role_id === "global_admin") {
        $("admin-name").textContent = body.username + " (" + body.email + ")";
        showAdmin("admin-signed-in", focus ? "admin-signed-in-title" : null);
      } else {
        showAdmin("admin-exists", null);
      }
    } catch (_) {
      showAdmin("accounts-unknown", null);
    }
  }

  async function createAdmin(event) {
    event.preventDefault();
    const button = $("admin-button");
    button.disabled = true;
    $("admin-progress").hidden = false;
    clearFieldErrors();
    hideError();
    try {
      const response = await fetch("/api/auth/email/register", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(Object.assign({
          username: $("admin-username").value,
          email: $("admin-email").value,
          password: $("admin-password").value,
        }, $("admin-token").value.trim() ? { setup_token: $("admin-token").value.trim() } : {})),
      });
      const body = await readJson(response);
      if (response.status === 403 && !body.error.startsWith("Email registration")) {
        // No setup grant in this browser: the setup token admits the first administrator.
        $("admin-token-field").hidden = false;
        $("admin-token-error").textContent = $("admin-token").value.trim()
          ? "This token is not valid (any more): use the newest one the server wrote."
          : "Enter the setup token to create the first administrator from this browser.";
        $("admin-token-error").hidden = false;
        $("admin-token").setAttribute("aria-invalid", "true");
        $("admin-token").focus();
        return;
      }
      if (response.status === 201) {
        $("admin-password").value = "";
        announce(body.message || "The administrator account was created.");
        await loadAccounts(true);
        return;
      }
      let first = null;
      for (const problem of body.details || []) {
        const field = adminFields.includes(problem.field) ? problem.field : null;
        if (!field) continue;
        const label = document.querySelector('label[for="admin-' + field + '"]').textContent;
        $("admin-" + field + "-error").textContent = label + " " + problem.message + ".";
        $("admin-" + field + "-error").hidden = false;
        $("admin-" + field).setAttribute("aria-invalid", "true");
        first = first || field;
      }
      if (first) {
        $("admin-" + first).focus();
      } else if (body.error === "Email address already in use.") {
        $("admin-email-error").textContent = body.error;
        $("admin-email-error").hidden = false;
        $("admin-email").setAttribute("aria-invalid", "true");
        $("admin-email").focus();
      } else {
        showError(body.error || "The server answered HTTP " + response.status + ".");
        // Someone else may have created the administrator meanwhile.
        loadAccounts(false);
      }
    } catch (error) {
      showError("The backend could not be reached: " + error.message);
    } finally {
      button.disabled = false;
      $("admin-progress").hidden = true;
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    $("admin-form").addEventListener("submit", createAdmin);
    $("setup-button").addEventListener("click", runSetup);
    $("recheck").addEventListener("click", () => loadStatus(true));
    $("retry-status").addEventListener("click", () => loadStatus(true));
    $("recheck-unavailable").addEventListener("click", () => loadStatus(true));
    $("recheck-refused").addEventListener("click", () => loadStatus(true));
    loadStatus(false);
  });
})();
