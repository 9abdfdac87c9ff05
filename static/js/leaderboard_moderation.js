// Organisers hide a run from the leaderboard with a reason (the run and its results are kept) and unhide
// it from the "Hidden runs" list, through the runs API (POST /api/runs/<id>/hide/ and /unhide/). The page
// reloads after each change: the board is rebuilt from the stored results.
import { fetchJSON } from "./dom.js";

const dialog = document.getElementById("hide-dialog");
const form = document.getElementById("hide-form");
const reason = document.getElementById("hide-reason");
const error = document.getElementById("hide-error");
let target = null;

function message(failure) {
  const data = failure.data;
  if (data && Array.isArray(data.reason)) return data.reason.join(" ");
  return failure.message || String(failure);
}

document.querySelectorAll("button[data-hide-run]").forEach((button) => {
  button.addEventListener("click", () => {
    target = button;
    document.getElementById("hide-run-name").textContent = button.dataset.runName;
    reason.value = "";
    error.hidden = true;
    dialog.showModal();
    reason.focus();
  });
});

document.getElementById("hide-cancel")?.addEventListener("click", () => dialog.close());

form?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = reason.value.trim();
  if (!text) {
    error.textContent = "Say why the run is hidden: participants see the reason.";
    error.hidden = false;
    return;
  }
  try {
    await fetchJSON(target.dataset.hideUrl, { method: "POST", body: { reason: text } });
  } catch (failure) {
    error.textContent = message(failure);
    error.hidden = false;
    return;
  }
  window.location.reload();
});

document.querySelectorAll("button[data-unhide-url]").forEach((button) => {
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await fetchJSON(button.dataset.unhideUrl, { method: "POST" });
    } catch (failure) {
      const box = document.getElementById("unhide-error");
      box.textContent = message(failure);
      box.hidden = false;
      button.disabled = false;
      return;
    }
    window.location.reload();
  });
});
