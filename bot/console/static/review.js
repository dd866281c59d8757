/* Review: filter recent predictions, low-confidence first; correct and confirm; add labels. */
"use strict";

(() => {
  const { api, el, say, upsert, state } = MB;
  const form = document.getElementById("filters");
  const results = document.getElementById("results");
  const more = document.getElementById("more");
  const PAGE = 48;
  let offset = 0;

  function query() {
    const data = new FormData(form);
    const params = new URLSearchParams();
    if (data.get("label")) params.set("label", data.get("label"));
    for (const [field, key] of [["min", "min_confidence"], ["max", "max_confidence"]]) {
      const value = data.get(field);
      if (value !== "" && value !== null) params.set(key, String(Math.min(100, Math.max(0, Number(value))) / 100));
    }
    params.set("corrected", data.get("corrected"));
    params.set("order", data.get("order"));
    params.set("limit", String(PAGE));
    params.set("offset", String(offset));
    return params;
  }

  function renderCounts(stats) {
    const body = document.querySelector("#counts tbody");
    body.replaceChildren();
    const names = new Set([...state.labels.map((l) => l.name),
      ...Object.keys(stats.predicted_per_label), ...Object.keys(stats.labelled_per_label)]);
    for (const name of names) {
      body.append(el("tr", {},
        el("th", { scope: "row", text: MB.labelName(name) }),
        el("td", { text: String(stats.predicted_per_label[name] || 0) }),
        el("td", { text: String(stats.labelled_per_label[name] || 0) })));
    }
    document.getElementById("totals").textContent =
      `${stats.memes_seen} memes, ${stats.corrections} corrections, ${stats.confirmations} confirmations`;
  }

  function refresh(item) { upsert(results, item, { onChange: refresh }); loadCounts(); }

  async function loadCounts() {
    try { renderCounts(await api("/api/stats")); } catch (err) { /* shown with the list */ }
  }

  async function load(append = false) {
    if (!append) offset = 0;
    results.setAttribute("aria-busy", "true");
    try {
      const data = await api(`/api/review?${query()}`);
      if (!append) results.replaceChildren();
      for (const item of data.items) upsert(results, item, { prepend: false, onChange: refresh });
      renderCounts(data.stats);
      more.hidden = data.items.length < PAGE;
      document.getElementById("none").hidden = results.children.length > 0;
    } catch (err) {
      say(err.message, "error");
    } finally {
      results.setAttribute("aria-busy", "false");
    }
  }

  function fillLabelSelect() {
    const select = document.getElementById("f-label");
    const chosen = select.value;
    select.replaceChildren(el("option", { value: "", text: "Any" }));
    for (const label of state.labels) select.append(el("option", { value: label.name, text: label.display }));
    select.value = chosen;
  }

  form.addEventListener("submit", (event) => { event.preventDefault(); load(); });
  form.addEventListener("change", () => load());
  more.addEventListener("click", () => { offset += PAGE; load(true); });

  document.getElementById("label-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = document.getElementById("new-label");
    try {
      const data = await api("/api/labels", { method: "POST", json: { name: input.value } });
      say(data.message, "ok");
      input.value = "";
      await MB.loadSession();
      load();
    } catch (err) {
      say(err.message, "error");
    }
  });

  MB.onSession(fillLabelSelect);
  MB.loadSession().then(() => load()).catch((err) => say(err.message, "error"));
})();
