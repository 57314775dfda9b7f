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

// While a draft runs, the sections drafted so far replace the page's draft body in place
// (read-only), so a reviewer can start reading before the model is done.
async function showDraftSoFar() {
  const answer = await fetch(window.location.pathname, { credentials: "same-origin" });
  if (!answer.ok) return;
  const page = new DOMParser().parseFromString(await answer.text(), "text/html");
  const fresh = page.getElementById("draft-body");
  const body = document.getElementById("draft-body");
  if (fresh && body) body.replaceChildren(...fresh.childNodes);
}

function watchProgress() {
  const box = document.getElementById("progress");
  if (!box) return;
  const url = box.dataset.progressUrl;
  const bar = box.querySelector("progress");
  const message = document.getElementById("progress-message");
  let parts = document.querySelectorAll("#draft-body [data-suggestion]").length;
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
        if (state.parts !== parts) {
          parts = state.parts;
          await showDraftSoFar();
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
