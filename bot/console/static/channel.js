/* The channel: upload memes, watch them get labelled live. */
"use strict";

(() => {
  const { api, el, say, upsert, live, state } = MB;
  const feed = document.getElementById("feed");
  const empty = document.getElementById("empty");
  const input = document.getElementById("file");
  const drop = document.getElementById("drop");
  const CONCURRENT = 3;
  const waiting = [];
  let running = 0;
  let items = new Map();

  function refreshEmpty() { empty.hidden = feed.children.length > 0; }

  function show(item) {
    if (item.platform !== "console" || item.chat_id !== "channel") return;
    items.set(item.post_id, item);
    upsert(feed, item, { onChange: show });
    refreshEmpty();
  }

  async function loadFeed() {
    feed.setAttribute("aria-busy", "true");
    try {
      const data = await api("/api/feed?limit=60");
      feed.querySelectorAll("article.card").forEach((n) => n.remove());
      items = new Map();
      for (const item of data.items.slice().reverse()) show(item);
    } catch (err) {
      say(err.message, "error");
    } finally {
      feed.setAttribute("aria-busy", "false");
      refreshEmpty();
    }
  }

  function pendingCard(file) {
    const node = el("article", { class: "card pending", "aria-busy": "true" },
      el("div", { class: "card-body" },
        el("p", { class: "label", text: "Labelling…" }),
        el("p", { class: "meta", text: file.name })));
    feed.prepend(node);
    refreshEmpty();
    return node;
  }

  function errorCard(node, name, message) {
    const box = el("article", { class: "card failed", role: "alert" },
      el("div", { class: "card-body" },
        el("p", { class: "label", text: "Not labelled" }),
        el("p", { class: "error-text", text: message }),
        el("p", { class: "meta", text: name }),
        el("button", { type: "button", class: "linkish", text: "Dismiss",
                       onclick: () => { box.remove(); refreshEmpty(); } })));
    node.replaceWith(box);
  }

  async function send(file, node) {
    const form = new FormData();
    const title = document.getElementById("title").value.trim();
    if (title) form.append("title", title);  // before the file: the server reads parts in order
    form.append("file", file, file.name);
    try {
      const data = await api("/api/upload", { method: "POST", form });
      const result = data.results[0];
      if (result.ok) {
        node.remove();
        show(result.item);
        say(`${result.name}: ${result.item.text}`, "ok");
      } else {
        errorCard(node, result.name, result.error);
      }
    } catch (err) {
      const result = err.data && err.data.results && err.data.results[0];
      const message = result ? result.error : err.message;
      errorCard(node, result ? result.name : file.name, message);
      say(`${file.name}: ${message}`, "error");
    }
  }

  function pump() {
    while (running < CONCURRENT && waiting.length) {
      const [file, node] = waiting.shift();
      running += 1;
      send(file, node).finally(() => { running -= 1; pump(); });
    }
  }

  function enqueue(files) {
    const list = [...files];
    if (!list.length) return;
    for (const file of list) waiting.push([file, pendingCard(file)]);
    say(`Uploading ${list.length} file${list.length > 1 ? "s" : ""}…`);
    pump();
  }

  input.addEventListener("change", () => { enqueue(input.files); input.value = ""; });
  drop.addEventListener("click", () => input.click());
  drop.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") { event.preventDefault(); input.click(); }
  });
  for (const name of ["dragenter", "dragover"]) {
    drop.addEventListener(name, (event) => { event.preventDefault(); drop.classList.add("over"); });
  }
  for (const name of ["dragleave", "drop"]) {
    drop.addEventListener(name, () => drop.classList.remove("over"));
  }
  drop.addEventListener("drop", (event) => { event.preventDefault(); enqueue(event.dataTransfer.files); });
  document.addEventListener("paste", (event) => {
    const files = [...(event.clipboardData ? event.clipboardData.files : [])];
    if (files.length) enqueue(files);
  });

  // ------------------------------------------------------------- reposts and sorting
  const places = document.getElementById("places");
  const tabPick = document.getElementById("tab-pick");
  const sorted = document.getElementById("sorted");
  const sortLabel = document.getElementById("sort-label");
  const repostMode = document.getElementById("repost-mode");

  function showPlaces(map) {
    places.replaceChildren();
    const tabs = [...new Set(Object.values(map))].sort();
    for (const [label, tab] of Object.entries(map).sort()) {
      const li = el("li", { "data-label": label }, `${MB.labelName(label)} → ${tab} `);
      li.append(el("button", { type: "button", class: "linkish admin-only", text: "Stop",
        "aria-label": `Stop sorting ${MB.labelName(label)}`, onclick: () => setSort(label, null) }));
      places.append(li);
    }
    if (!places.children.length) places.append(el("li", { class: "muted", text: "Nothing is sorted yet." }));
    const chosen = tabPick.value;
    tabPick.replaceChildren(el("option", { value: "", text: "(choose a tab)" }),
      ...tabs.map((t) => el("option", { value: t, text: t })));
    if (tabs.includes(chosen)) tabPick.value = chosen;
  }

  async function loadPlaces() {
    const data = await api("/api/sort");
    repostMode.value = data.repost_mode === "off" ? "off" : "note";
    showPlaces(data.places);
  }

  async function setSort(label, tab) {
    try {
      const data = await api("/api/sort", { method: "POST", json: { label, tab } });
      say(data.message, "ok");
      showPlaces(data.places);
    } catch (err) { say(err.message, "error"); }
  }

  async function showTab() {
    sorted.replaceChildren();
    if (!tabPick.value) return;
    try {
      const data = await api(`/api/sorted?tab=${encodeURIComponent(tabPick.value)}`);
      for (const item of data.items) upsert(sorted, item, { prepend: false });
      if (!data.items.length) sorted.append(el("p", { class: "muted", text: "No memes in this tab yet." }));
    } catch (err) { say(err.message, "error"); }
  }

  document.getElementById("sort-form").addEventListener("submit", (event) => {
    event.preventDefault();
    setSort(sortLabel.value, document.getElementById("sort-tab").value.trim());
  });
  repostMode.addEventListener("change", async () => {
    try {
      const data = await api("/api/reposts", { method: "POST", json: { mode: repostMode.value } });
      say(data.message, "ok");
    } catch (err) { say(err.message, "error"); }
  });
  tabPick.addEventListener("change", showTab);

  MB.onSession(() => {
    sortLabel.replaceChildren(...state.labels.map((l) => el("option", { value: l.name, text: l.display })));
    loadPlaces().catch((err) => say(err.message, "error"));
  });

  MB.onSession(() => {
    document.getElementById("limit").textContent = state.maxUploadText;
    for (const item of items.values()) upsert(feed, item, { onChange: show });
  });

  live({
    item: show,
    labels: (data) => { state.labels = data.labels; for (const item of items.values()) upsert(feed, item, { onChange: show }); },
    model: (data) => { state.serving = data.serving; document.getElementById("serving").textContent = data.serving; },
    places: (data) => showPlaces(data.places),
  }, loadFeed);

  MB.loadSession().then(loadFeed).catch((err) => say(err.message, "error"));
})();
