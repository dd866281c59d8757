/* Settings: the console channel's rules (the core's settings menu) as a form; Save sends
   every change at once, and a refused value changes nothing. */
"use strict";

(() => {
  const { api, el, say, state } = MB;
  const form = document.getElementById("settings");
  const fields = document.getElementById("fields");
  let shown = {};  // setting name -> the value the form started from

  function field(row) {
    const id = `setting-${row.name}`;
    const inherited = row.inherited ? " (default)" : "";
    const label = el("label", { for: id, text: `${row.title}${inherited}` });
    if (row.multi) {
      const box = el("fieldset", { id, "data-setting": row.name },
        el("legend", { text: `${row.title}${inherited}` }));
      for (const choice of row.choices) {
        const input = el("input", { type: "checkbox", value: choice.value,
                                    name: row.name, checked: choice.current });
        box.append(el("label", { class: "choice" }, input, ` ${choice.text}`));
      }
      return box;
    }
    const select = el("select", { id, name: row.name, "data-setting": row.name });
    for (const choice of row.choices) {
      select.append(el("option", { value: choice.value, text: choice.text, selected: choice.current }));
    }
    select.append(el("option", { value: "default", text: "Default" }));
    return el("p", { class: "field" }, label, " ", select);
  }

  function value(name) {
    const checks = form.querySelectorAll(`input[name="${name}"]`);
    if (checks.length) {
      return [...checks].filter((c) => c.checked).map((c) => c.value).join(",");
    }
    return form.querySelector(`select[name="${name}"]`).value;
  }

  function render(settings) {
    fields.replaceChildren(...settings.rows.map(field));
    shown = Object.fromEntries(settings.rows.map((row) => [row.name, value(row.name)]));
  }

  async function load() {
    const signin = document.getElementById("signin");
    signin.hidden = state.admin;
    form.hidden = !state.admin;
    if (!state.admin) return;
    try {
      render((await api("/api/settings")).settings);
    } catch (err) {
      say(err.message, "error");
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const changes = {};
    for (const name of Object.keys(shown)) {
      const now = value(name);
      if (now !== shown[name]) changes[name] = now;
    }
    if (!Object.keys(changes).length) {
      say("Nothing to save.", "info");
      return;
    }
    try {
      const data = await api("/api/settings", { method: "POST", json: { changes } });
      render(data.settings);
      say(data.message, "ok");
    } catch (err) {
      say(err.message, "error");
    }
  });

  MB.onSession(load);
  MB.loadSession().catch((err) => say(err.message, "error"));
})();
