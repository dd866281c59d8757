/* Audit log: admin actions, newest first; with ?post=ID one meme's history (who, when, from,
   to) and the decisions that can still be undone. Operators only (the admin token). */
"use strict";

(() => {
  const { api, el, say, when, state } = MB;
  const params = new URLSearchParams(location.search);
  const post = /^[0-9]{1,18}$/.test(params.get("post") || "") ? params.get("post") : null;
  const body = document.querySelector("#log tbody");
  const older = document.getElementById("older");
  const PAGE = 100;
  let before = null;

  function row(e) {
    const where = e.platform ? `${e.platform} ${e.chat_id || ""}` : "";
    const postLink = e.post_id && !post
      ? el("a", { href: `/audit?post=${e.post_id}`, text: ` meme #${e.post_id}` }) : null;
    return el("tr", { "data-action": e.action, "data-entry-id": e.id },
      el("td", { text: when(e.at) }), el("td", {}, el("code", { text: e.actor })),
      el("td", { text: e.action }), el("td", {}, where, postLink),
      el("td", { text: e.from || "" }), el("td", { text: e.to || "" }),
      el("td", { class: "muted", text: e.detail || "" }));
  }

  async function loadLog(append = false) {
    const query = new URLSearchParams({ limit: String(PAGE) });
    if (append && before) query.set("before", String(before));
    try {
      const data = await api(`/api/audit?${query}`);
      if (!append) body.replaceChildren();
      body.append(...data.entries.map(row));
      before = data.entries.length ? data.entries[data.entries.length - 1].id : before;
      older.hidden = data.entries.length < PAGE;
    } catch (err) {
      say(err.message, "error");
    }
  }

  async function loadPost() {
    try {
      const data = await api(`/api/posts/${post}/history`);
      document.getElementById("audit-title").textContent = `History of meme #${post}`;
      const section = document.getElementById("post");
      section.hidden = false;
      document.getElementById("post-card").replaceChildren(MB.card(data.item, { onChange: () => loadPost() }));
      body.replaceChildren(...data.history.map(row));
      older.hidden = true;
      const undoable = document.getElementById("undoable");
      undoable.replaceChildren(...data.undoable.map((id) => el("li", {},
        `Decision #${id} can still be taken back (no retrain used it). `,
        el("button", { type: "button", class: "secondary", text: `Undo #${id}`, onclick: () => undo(id) }))));
    } catch (err) {
      say(err.message, "error");
    }
  }

  async function undo(id) {
    try {
      const data = await api(`/api/corrections/${id}/undo`, { method: "POST" });
      say(data.notice, "ok");
      await loadPost();
    } catch (err) {
      say(err.message, "error");
    }
  }

  older.addEventListener("click", () => loadLog(true));
  MB.onSession(() => { if (state.admin) { if (post) loadPost(); else loadLog(); } });
  MB.loadSession().catch((err) => say(err.message, "error"));
})();
