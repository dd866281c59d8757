/* Models: versions with their metrics and reports; retrain with live progress; roll back. */
"use strict";

(() => {
  const { api, el, say, percent, when, state } = MB;
  let polling = null;

  function number(value, digits = 2) {
    return value === null || value === undefined ? "–" : Number(value).toFixed(digits);
  }

  function versionRow(v) {
    const status = v.serving ? `${v.status}, serving` : v.status;
    const details = el("td", {});
    const bits = [v.summary];
    if (v.kind) bits.push(`${v.kind} retrain of ${v.retrained_from || "?"}`);
    if (v.metrics.reason) bits.push(v.metrics.reason);
    details.append(el("span", { text: bits.filter(Boolean).join(" · ") }));
    if (v.reports.length) {
      const list = el("ul", { class: "reports", "aria-label": `Reports of ${v.version}` });
      for (const name of v.reports) {
        list.append(el("li", {}, el("a", {
          href: `/api/models/${encodeURIComponent(v.version)}/files/${encodeURIComponent(name)}`,
          target: "_blank", rel: "noopener", text: name,
        })));
      }
      details.append(list);
    }
    const action = el("td", { class: "admin-only" });
    if (state.admin && !v.serving && v.status !== "failed" && v.available) {
      action.append(el("button", {
        type: "button", class: "secondary", text: "Serve this",
        "aria-label": `Roll back to ${v.version}`, onclick: () => rollback(v.version),
      }));
    }
    return el("tr", { "data-version": v.version, "data-status": v.status },
      el("th", { scope: "row" }, el("code", { text: v.version }),
        el("div", { class: "muted small", text: when(v.created_at) })),
      el("td", {}, el("span", { class: `pill ${v.status}`, text: status })),
      el("td", { text: percent(v.metrics.accuracy) }),
      el("td", { text: number(v.metrics.macro_f1) }),
      el("td", { text: number(v.metrics.ece, 3) }),
      details, action);
  }

  function jobLine(job) {
    const result = job.model_version ? ` → ${job.model_version}` : "";
    const error = job.error ? ` (${job.error})` : "";
    return el("li", { "data-job-id": job.id },
      el("strong", { text: `#${job.id} ${job.kind}` }), ` ${job.status}${result}${error} · ${when(job.created_at)}`);
  }

  async function load() {
    try {
      const data = await api("/api/models");
      state.serving = data.serving;
      document.getElementById("serving").textContent = data.serving;
      document.querySelector("#versions tbody").replaceChildren(...data.versions.map(versionRow));
      document.getElementById("jobs").replaceChildren(...data.jobs.map(jobLine));
      const open = data.jobs.find((j) => !j.finished);
      if (open && state.admin && !polling) watch(open);
    } catch (err) {
      say(err.message, "error");
    }
  }

  function showJob(job) {
    document.getElementById("job").hidden = false;
    document.getElementById("job-title").textContent = `Retrain job #${job.id}`;
    const status = document.getElementById("job-status");
    status.textContent = job.status;
    status.dataset.status = job.status;
    document.getElementById("job-log").textContent = job.log_tail || "(no output yet)";
    const progress = document.getElementById("job-progress");
    if (job.finished) { progress.max = 1; progress.value = 1; } else { progress.removeAttribute("value"); }
    let result = "";
    if (job.status === "succeeded") result = `new version ${job.model_version}`;
    if (job.status === "failed") result = job.error || "";
    document.getElementById("job-result").textContent = result;
    const report = document.getElementById("job-report");
    report.textContent = job.report || "";
    report.hidden = !job.report;
  }

  function watch(job) {
    showJob(job);
    clearInterval(polling);
    polling = setInterval(async () => {
      try {
        const data = await api(`/api/jobs/${job.id}`);
        showJob(data.job);
        if (data.job.finished) {
          clearInterval(polling);
          polling = null;
          say(data.job.status === "succeeded"
            ? `Retrain finished: ${data.job.model_version}. Serving ${data.serving}.`
            : `Retrain failed: ${data.job.error}`, data.job.status === "succeeded" ? "ok" : "error");
          load();
        }
      } catch (err) {
        say(err.message, "error");
      }
    }, 1500);
  }

  async function rollback(version) {
    try {
      const data = await api("/api/models/rollback", { method: "POST", json: version ? { version } : {} });
      say(data.message, "ok");
      load();
    } catch (err) {
      say(err.message, "error");
    }
  }

  document.getElementById("retrain").addEventListener("click", async () => {
    try {
      const data = await api("/api/retrain", { method: "POST" });
      say(data.message, "ok");
      if (data.job) watch(data.job);
      load();
    } catch (err) {
      say(err.message, "error");
    }
  });
  document.getElementById("rollback").addEventListener("click", () => rollback(null));

  MB.live({ model: () => load() });
  MB.onSession(load);
  MB.loadSession().catch((err) => say(err.message, "error"));
})();
