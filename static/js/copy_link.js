// Copy buttons of the study page's invitation links: <button data-copy-target="ID"> copies the value of the
// input with that id, and says so next to the button (or asks to copy by hand where the clipboard is refused).
import { el, errorMessage } from "./dom.js";

function say(button, text) {
  let status = button.parentNode.querySelector(":scope > .copy-status");
  if (!status) {
    status = el("span", { class: "copy-status helptext", role: "status" });
    button.after(status);
  }
  status.textContent = text;
}

for (const button of document.querySelectorAll("button[data-copy-target]")) {
  button.addEventListener("click", async () => {
    const input = document.getElementById(button.dataset.copyTarget);
    if (!input) return;
    input.select();
    try {
      await navigator.clipboard.writeText(input.value);
      say(button, "Copied.");
    } catch (error) {
      say(button, `Press Ctrl+C (or ⌘C) to copy: ${errorMessage(error)}`);
    }
  });
}
