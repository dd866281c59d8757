/* Shared by every console page: API calls (with the CSRF double-submit header), safe DOM
   building (text only, never HTML), the session header, and meme cards. */
"use strict";

const MB = (() => {
  function cookie(name) {
    for (const part of document.cookie.split(";")) {
      const [k, ...v] = part.trim().split("=");
      if (k === name) return decodeURIComponent(v.join("="));
    }
    return "";
  }

  async function api(path, { method = "GET", json, form } = {}) {
    const options = { method, headers: {}, credentials: "same-origin" };
    if (method !== "GET") options.headers["X-CSRF-Token"] = cookie("memebot_csrf");
    if (json !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(json);
    }
    if (form !== undefined) options.body = form;
    let response;
    try {
      response = await fetch(path, options);
    } catch (err) {
      throw Object.assign(new Error("The console is not reachable."), { status: 0 });
    }
    let data = null;
    try { data = await response.json(); } catch (err) { data = null; }
    if (!response.ok) {
      const message = (data && data.error) || `The server answered ${response.status}.`;
      throw Object.assign(new Error(message), { status: response.status, data });
    }
    return data;
  }

  /* el("p", {class: "x", text: "..."}, child, "text") -- strings become text nodes. */
  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on") && typeof value === "function") {
        node.addEventListener(key.slice(2), value);
      } else if (key === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  const state = { admin: false, labels: [], serving: "", maxUploadText: "" };
  const listeners = [];

  function say(message, kind = "info") {
    const box = document.getElementById("status");
    if (!box) return;
    box.textContent = message;
    box.dataset.kind = kind;
  }

  function percent(value) {
    return value === null || value === undefined ? "–" : `${Math.round(value * 100)}%`;
  }

  function when(iso) {
    if (!iso) return "";
    const date = new Date(iso);
    return isNaN(date) ? iso : date.toLocaleString();
  }

  async function loadSession() {
    const data = await api("/api/session");
    state.admin = data.admin;
    state.labels = data.labels;
    state.serving = data.serving;
    state.maxUploadText = data.max_upload_text;
    document.body.classList.toggle("is-admin", state.admin);
    renderHeader();
    listeners.forEach((fn) => fn(state));
    return state;
  }

  function onSession(fn) { listeners.push(fn); }

  function renderHeader() {
    const box = document.getElementById("who");
    if (!box) return;
    box.replaceChildren();
    if (state.admin) {
      box.append(
        el("span", { class: "badge", text: "Admin" }), " ",
        el("button", {
          type: "button", class: "linkish", text: "Sign out",
          onclick: async () => { await api("/api/logout", { method: "POST" }); await loadSession(); },
        }),
      );
    } else {
      box.append(el("span", { class: "muted", text: "Viewer" }), " ",
                 el("a", { href: "/login", text: "Admin sign-in" }));
    }
    const model = document.getElementById("serving");
    if (model) model.textContent = state.serving;
  }

  /* ------------------------------------------------------------------ meme cards */

  function labelName(name) {
    const known = state.labels.find((l) => l.name === name);
    return known ? known.display : name;
  }

  function card(item, { onChange } = {}) {
    const current = item.effective_label || item.label;
    const title = item.name || `meme #${item.post_id}`;
    const node = el("article", {
      class: "card", "data-post-id": item.post_id, "data-label": current || "",
      "aria-label": `${title}: ${item.text || "no label"}`,
    });
    node.append(picture(item, `Meme ${title}`));
    const body = el("div", { class: "card-body" });
    body.append(el("p", { class: "label", text: item.text || "not labelled" }));
    if (item.caption) body.append(el("p", { class: "caption", text: item.caption }));
    if (item.repost) body.append(repostNote(item, onChange));
    // a label from the correction memory: its number is a likeness, not the model's confidence
    if (item.confidence !== null && !item.remembered) {
      body.append(el("meter", {
        min: 0, max: 1, value: item.confidence, low: 0.6, optimum: 1,
        "aria-label": `confidence ${percent(item.confidence)}`, title: `confidence ${percent(item.confidence)}`,
      }));
    }
    if (item.effective_label) {
      const verb = item.effective_label === item.label && !item.corrected ? "Confirmed" : "Set to";
      body.append(el("p", { class: "state", text: `${verb}: ${item.effective_name} (by an admin)` }));
    }
    const meta = [item.name, item.platform !== "console" ? `${item.platform} ${item.chat_id}` : null,
                  when(item.posted_at)].filter(Boolean).join(" · ");
    body.append(el("p", { class: "meta", text: meta }));
    if (state.admin) {
      body.append(actions(item, current, onChange));
      body.append(el("p", { class: "meta" }, el("a", { href: `/audit?post=${item.post_id}`, text: "History" })));
    }
    node.append(body);
    return node;
  }

  /* The meme itself: a picture (a GIF moves by itself), or a clip playing muted and looping
     inline, shown as its poster frame where this browser cannot play it. */
  function picture(item, alt) {
    const still = () => el("img", {
      src: item.image, alt, loading: "lazy", width: item.width, height: item.height,
    });
    const video = document.createElement("video");
    if (!item.video || !video.canPlayType(item.video_type || "")) return still();
    video.muted = true;  // the property, not only the attribute: browsers autoplay muted clips
    for (const [key, value] of Object.entries({
      src: item.video, poster: item.image, muted: "", loop: "", autoplay: "", playsinline: "",
      preload: "metadata", width: item.width, height: item.height, "aria-label": alt,
    })) video.setAttribute(key, value);
    video.addEventListener("error", () => video.replaceWith(still()), { once: true });
    return video;
  }

  function repostNote(item, onChange) {
    const note = el("div", { class: "repost", role: "note" }, el("p", { text: item.repost.text }));
    if (!state.admin) return note;
    const judge = (action) => async () => {
      try {
        const data = await api(`/api/posts/${item.post_id}/repost`, {
          method: "POST", json: { action, original_post_id: item.repost.original_post_id } });
        say(data.notice, "ok");
        if (onChange) onChange({ ...data.item, repost: null });
      } catch (err) { say(err.message, "error"); }
    };
    note.append(
      el("button", { type: "button", class: "linkish", text: "Not a repost", onclick: judge("not_repost") }),
      el("button", { type: "button", class: "linkish", text: "Exempt this picture", onclick: judge("exempt") }));
    return note;
  }

  function actions(item, current, onChange) {
    const group = el("div", { class: "actions", role: "group", "aria-label": `Label of ${item.name || "meme #" + item.post_id}` });
    for (const label of state.labels) {
      group.append(el("button", {
        type: "button", class: "label-button", "data-label": label.name,
        "aria-pressed": String(label.name === current), text: label.display,
        onclick: () => setLabel(item, label.name, onChange),
      }));
    }
    if (item.label && !item.effective_label) {
      group.append(el("button", {
        type: "button", class: "confirm-button", text: `✓ Confirm ${item.label_name}`,
        onclick: () => confirmLabel(item, onChange),
      }));
    }
    return group;
  }

  async function setLabel(item, label, onChange) {
    try {
      const data = await api(`/api/posts/${item.post_id}/label`, { method: "POST", json: { label } });
      say(data.notice, "ok");
      if (onChange) onChange(data.item);
    } catch (err) {
      say(err.message, "error");
    }
  }

  async function confirmLabel(item, onChange) {
    try {
      const data = await api(`/api/posts/${item.post_id}/confirm`, { method: "POST" });
      say(data.notice, "ok");
      if (onChange) onChange(data.item);
    } catch (err) {
      say(err.message, "error");
    }
  }

  /* Replace the card of the same meme in `container` (keeping keyboard focus), or add it. */
  function upsert(container, item, { prepend = true, onChange } = {}) {
    const old = container.querySelector(`[data-post-id="${Number(item.post_id)}"]`);
    const focusedLabel = old && old.contains(document.activeElement)
      ? document.activeElement.dataset.label || document.activeElement.className : null;
    const fresh = card(item, { onChange });
    if (old) old.replaceWith(fresh);
    else if (prepend) {
      // Newest first by post id, whatever order concurrent uploads finish in.
      const older = [...container.querySelectorAll("article[data-post-id]")].find(
        (n) => Number(n.dataset.postId) < Number(item.post_id));
      if (older) older.before(fresh); else container.append(fresh);
    } else container.append(fresh);
    if (focusedLabel) {
      const again = [...fresh.querySelectorAll("button")].find(
        (b) => (b.dataset.label || b.className) === focusedLabel) || fresh.querySelector("button");
      if (again) again.focus();
    }
    return fresh;
  }

  /* Live events; `onReopen` runs after a dropped connection comes back. */
  function live(handlers, onReopen) {
    const source = new EventSource("/api/events");
    let dropped = false;
    source.addEventListener("open", () => { if (dropped && onReopen) onReopen(); dropped = false; });
    source.addEventListener("error", () => { dropped = true; });
    for (const [name, fn] of Object.entries(handlers)) {
      source.addEventListener(name, (event) => {
        try { fn(JSON.parse(event.data)); } catch (err) { /* ignore a malformed event */ }
      });
    }
    return source;
  }

  return { api, el, say, percent, when, state, loadSession, onSession, card, upsert, live, labelName };
})();
