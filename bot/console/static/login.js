/* Sign in with the admin token; the printed link carries it in the #fragment, which never
   reaches the server's logs. */
"use strict";

(() => {
  const form = document.getElementById("login");
  const input = document.getElementById("token");

  async function signIn(token) {
    try {
      await MB.api("/api/login", { method: "POST", json: { token } });
      MB.say("Signed in.", "ok");
      window.location.replace("/");
    } catch (err) {
      MB.say(err.message, "error");
      input.focus();
    }
  }

  form.addEventListener("submit", (event) => { event.preventDefault(); signIn(input.value.trim()); });
  MB.loadSession().catch(() => {});
  if (window.location.hash.length > 1) {
    const token = decodeURIComponent(window.location.hash.slice(1));
    history.replaceState(null, "", "/login");
    signIn(token);
  } else {
    input.focus();
  }
})();
