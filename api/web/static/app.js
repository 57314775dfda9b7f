// rca reviewer UI: evidence highlighting and draft progress. No third-party code.
"use strict";

function highlightEvidence(id) {
  document.querySelectorAll(".ev.highlight").forEach((el) => el.classList.remove("highlight"));
  const target = document.getElementById("ev-" + id);
  if (!target) return;
  target.classList.add("highlight");
  target.scrollIntoView({ behavior: "smooth", block: "center" });
}

document.addEventListener("click", (event) => {
  const cite = event.target.closest("[data-cite]");
  if (!cite) return;
  event.preventDefault();
  highlightEvidence(cite.dataset.cite);
});

function watchProgress() {
  const box = document.getElementById("progress");
  if (!box) return;
  const url = box.dataset.progressUrl;
  const bar = box.querySelector("progress");
  const message = document.getElementById("progress-message");
  const tick = async () => {
    try {
      const answer = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (answer.ok) {
        const state = await answer.json();
        bar.value = state.progress;
        message.textContent = state.message;
        if (state.status !== "queued" && state.status !== "running") {
          window.location.reload();
          return;
        }
      }
    } catch (err) {
      message.textContent = "waiting for the server…";
    }
    window.setTimeout(tick, 1000);
  };
  window.setTimeout(tick, 1000);
}

document.addEventListener("DOMContentLoaded", watchProgress);
