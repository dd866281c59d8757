/* Review desk: corrections from chats not trusted, approved or rejected one by one or in bulk;
   off-topic memes held from any chat, allowed or kept removed; which chats are trusted or
   delegated to. Operators only (the admin token). */
"use strict";

(() => {
  const { api, el, say, when, state } = MB;
  const list = document.getElementById("pending");
  const selectAll = document.getElementById("select-all");

  function pendingCard(item) {
    const pick = el("input", { type: "checkbox", class: "pick-box", value: item.correction_id,
      "aria-label": `Select correction #${item.correction_id}` });
    const change = `${item.from_name || "unlabelled"} → ${item.to_name}`;
    return el("article", { class: "card review-card", "data-correction-id": item.correction_id,
                           "data-label": item.to, "aria-label": `Correction #${item.correction_id}: ${change}` },
      el("img", { src: item.image, alt: `Meme #${item.post_id}`, loading: "lazy",
                  width: item.width, height: item.height }),
      el("div", { class: "card-body" },
        el("label", { class: "pick" }, pick, `#${item.correction_id}`),
        el("p", { class: "change", text: change }),
        el("p", { class: "meta", text: `${item.kind} by ${item.admin} in ${item.platform} ${item.chat_id} · ${when(item.at)}` }),
        el("div", { class: "actions", role: "group", "aria-label": `Review correction #${item.correction_id}` },
          el("button", { type: "button", text: "Approve", onclick: () => review([item.correction_id], "approve") }),
          el("button", { type: "button", class: "secondary", text: "Reject",
                         onclick: () => review([item.correction_id], "reject") })),
        el("p", { class: "muted small" }, el("a", { href: `/audit?post=${item.post_id}`, text: "History" }))));
  }

  const heldList = document.getElementById("held");

  function heldCard(item) {
    const what = `${item.label_name || "unlabelled"} by ${item.author}`;
    return el("article", { class: "card held-card", "data-post-id": item.post_id,
                           "aria-label": `Held meme #${item.post_id}: ${what}` },
      el("img", { src: item.image, alt: `Meme #${item.post_id}`, loading: "lazy",
                  width: item.width, height: item.height }),
      el("div", { class: "card-body" },
        el("p", { class: "change", text: what }),
        el("p", { class: "meta", text: `held in ${item.platform} ${item.chat_id} · ${when(item.at)}` }),
        el("div", { class: "actions", role: "group", "aria-label": `Decide held meme #${item.post_id}` },
          el("button", { type: "button", text: "Allow", onclick: () => decide(item.post_id, "allow") }),
          el("button", { type: "button", class: "secondary", text: "Keep removed",
                         onclick: () => decide(item.post_id, "keep") })),
        el("p", { class: "muted small" }, el("a", { href: `/audit?post=${item.post_id}`, text: "History" }))));
  }

  async function loadHeld() {
    if (!state.admin) return;
    heldList.setAttribute("aria-busy", "true");
    try {
      const data = await api("/api/holds?limit=200");
      heldList.replaceChildren(...data.items.map(heldCard));
      document.getElementById("held-count").textContent = String(data.items.length);
      document.getElementById("nothing-held").hidden = data.items.length > 0;
    } catch (err) {
      say(err.message, "error");
    } finally {
      heldList.setAttribute("aria-busy", "false");
    }
  }

  async function decide(postId, decision) {
    try {
      const data = await api(`/api/holds/${postId}`, { method: "POST", json: { decision } });
      say(data.notice, "ok");
    } catch (err) {
      say(err.message, "error");
    }
    await loadHeld();
  }

  async function load() {
    if (!state.admin) return;
    list.setAttribute("aria-busy", "true");
    try {
      const data = await api("/api/desk?limit=200");
      list.replaceChildren(...data.items.map(pendingCard));
      document.getElementById("pending-count").textContent = String(data.pending);
      document.getElementById("nothing").hidden = data.items.length > 0;
      selectAll.checked = false;
    } catch (err) {
      say(err.message, "error");
    } finally {
      list.setAttribute("aria-busy", "false");
    }
  }

  async function review(ids, action) {
    if (!ids.length) { say("Select some corrections first.", "error"); return; }
    try {
      const data = await api("/api/desk", { method: "POST", json: { ids, action } });
      say(data.message, "ok");
      await load();
    } catch (err) {
      say(err.message, "error");
    }
  }

  function selected() {
    return [...list.querySelectorAll(".pick-box:checked")].map((box) => Number(box.value));
  }

  async function loadChats() {
    if (!state.admin) return;
    try {
      const data = await api("/api/chats");
      const body = document.querySelector("#chats tbody");
      body.replaceChildren(...data.chats.map((c) => el("tr", { "data-chat": c.chat },
        el("th", { scope: "row" }, el("code", { text: c.chat })),
        el("td", { text: c.level }), el("td", { class: "muted", text: c.granted_by || "" }))));
      if (!data.chats.length) {
        body.append(el("tr", {}, el("td", { colspan: 3, class: "muted", text: "No chat is trusted yet." })));
      }
    } catch (err) {
      say(err.message, "error");
    }
  }

  selectAll.addEventListener("change", () => {
    for (const box of list.querySelectorAll(".pick-box")) box.checked = selectAll.checked;
  });
  document.getElementById("approve-selected").addEventListener("click", () => review(selected(), "approve"));
  document.getElementById("reject-selected").addEventListener("click", () => review(selected(), "reject"));
  document.getElementById("trust-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const chat = document.getElementById("trust-chat").value.trim();
    const level = document.getElementById("trust-level").value;
    try {
      const data = await api("/api/chats", { method: "POST", json: { chat, level } });
      say(data.message, "ok");
      await Promise.all([loadChats(), load()]);
    } catch (err) {
      say(err.message, "error");
    }
  });

  MB.onSession(() => { load(); loadHeld(); loadChats(); });
  MB.loadSession().catch((err) => say(err.message, "error"));
})();
