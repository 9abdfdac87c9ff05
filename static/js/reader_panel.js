// The reader workspace's question panel: built once for the study's design, then updated from
// the state (which choice is checked, the active Likert scale, the mark count, busy buttons).
// Buttons carry data-action (and data-value, data-scale) for the page's click handler.
import { el } from "./dom.js";
import { isComplete } from "./reader_state.js";

function choiceButton(action, value, label, key, extra = {}) {
  return el(
    "button",
    { type: "button", class: "rw-choice", role: "radio", "aria-checked": "false", "data-action": action,
      "data-value": String(value), ...extra },
    el("span", { class: "rw-choice-label", text: label }),
    key ? el("kbd", { text: key }) : null,
  );
}

function group(legend, ...children) {
  return el("fieldset", { class: "rw-q" }, el("legend", { text: legend }), ...children);
}

function turingPanel() {
  return [
    group(
      "Is this image real or synthetic?",
      el("div", { class: "rw-choices rw-two", role: "radiogroup", "aria-label": "Real or synthetic" },
        choiceButton("call", "real", "Real", "R"), choiceButton("call", "synthetic", "Synthetic", "S")),
    ),
    group(
      "How confident are you?",
      el("div", { class: "rw-choices rw-five", role: "radiogroup", "aria-label": "Confidence" },
        ...[1, 2, 3, 4, 5].map((n) => choiceButton("confidence", n, String(n), null, { title: `Confidence ${n}` }))),
      el("div", { class: "rw-ends" }, el("span", { text: "1 guessing" }), el("span", { text: "5 certain" })),
    ),
  ];
}

function likertPanel(scales) {
  return scales.map((scale, i) => {
    const options = scale.anchors.map((anchor, j) =>
      el(
        "button",
        { type: "button", class: "rw-anchor", role: "radio", "aria-checked": "false", "data-action": "rate",
          "data-scale": String(i), "data-value": String(j + 1) },
        el("kbd", { text: String(j + 1) }),
        el("span", { text: anchor }),
      ),
    );
    const anchors = el("div", { class: "rw-anchors", role: "radiogroup", "aria-label": scale.label }, ...options);
    const fieldset = group(scale.label, anchors);
    fieldset.classList.add("rw-scale");
    fieldset.dataset.scale = scale.key;
    fieldset.dataset.index = String(i);
    return fieldset;
  });
}

function pairwisePanel(allowNoPreference) {
  const buttons = [choiceButton("choice", "left", "Left", "←")];
  if (allowNoPreference) buttons.push(choiceButton("choice", "none", "No preference", "↓"));
  buttons.push(choiceButton("choice", "right", "Right", "→"));
  const choices = el("div", { class: `rw-choices rw-pair n${buttons.length}`, role: "radiogroup" }, ...buttons);
  return [group("Which image do you prefer?", choices)];
}

function markRating() {
  return group(
    "Rate the current mark",
    el("p", { class: "rw-help", text: "How sure are you that it should not be there? Keys 1–5 rate the last mark placed." }),
    el("div", { class: "rw-choices rw-five", role: "radiogroup", "aria-label": "Rating of the current mark", id: "rw-mark-rating" },
      ...[1, 2, 3, 4, 5].map((n) => choiceButton("rateMark", n, String(n), null, { title: `Rating ${n}` }))),
    el("div", { class: "rw-ends" }, el("span", { text: "1 unsure" }), el("span", { text: "5 sure" })),
  );
}

function hallucinationPanel(ratings) {
  const tool = (kind, label, key) =>
    el(
      "button",
      { type: "button", class: "rw-tool", "aria-pressed": "false", "data-action": "tool", "data-value": kind },
      el("span", { text: label }),
      el("kbd", { text: key }),
    );
  return [
    group(
      "Mark anything that should not be there",
      el("p", { class: "rw-help", text: "Pick a tool, then click (point) or drag (box) on the image. Drag a mark to move it." }),
      el("div", { class: "rw-tools" }, tool("point", "Point", "P"), tool("box", "Box", "B")),
      el(
        "div",
        { class: "rw-marks" },
        el("span", { id: "rw-mark-count", class: "rw-mark-count", text: "No marks" }),
        el("button", { type: "button", class: "rw-small", "data-action": "removeLast", text: "Remove last ⌫" }),
        el("button", { type: "button", class: "rw-small", "data-action": "clearMarks", text: "Clear" }),
      ),
      el("p", { id: "rw-restored", class: "rw-help", hidden: true }),
    ),
    ...(ratings ? [markRating()] : []),
    group(
      "Or",
      el(
        "button",
        { type: "button", class: "rw-choice rw-none", "aria-pressed": "false", "data-action": "none" },
        el("span", { class: "rw-choice-label", text: "No hallucination" }),
        el("kbd", { text: "N" }),
      ),
    ),
  ];
}

// The panel's fieldsets for the study's design.
export function buildPanel(config) {
  if (config.design === "turing") return turingPanel();
  if (config.design === "likert") return likertPanel(config.scales);
  if (config.design === "pairwise") return pairwisePanel(config.allowNoPreference);
  if (config.design === "hallucination") return hallucinationPanel(config.ratings);
  return [];
}

function setChecked(form, selector, isChecked) {
  form.querySelectorAll(selector).forEach((node) => {
    node.setAttribute(node.getAttribute("role") === "radio" ? "aria-checked" : "aria-pressed", String(isChecked(node)));
  });
}

function updateLikert(form, s) {
  const { answer, config, activeScale } = s;
  setChecked(form, "[data-action=rate]", (b) => answer.scores?.[config.scales[b.dataset.scale].key] === Number(b.dataset.value));
  form.querySelectorAll(".rw-scale").forEach((fieldset) => {
    const active = Number(fieldset.dataset.index) === activeScale;
    fieldset.classList.toggle("rw-active", active);
    if (active) fieldset.setAttribute("aria-current", "true");
    else fieldset.removeAttribute("aria-current");
  });
}

function updateHallucination(form, s) {
  setChecked(form, "[data-action=tool]", (b) => s.markTool === b.dataset.value);
  setChecked(form, "[data-action=none]", () => s.answer.none === true);
  const count = s.answer.none ? 0 : (s.answer.marks || []).length;
  const counter = form.querySelector("#rw-mark-count");
  counter.textContent = count ? `${count} mark${count === 1 ? "" : "s"}` : "No marks";
  counter.dataset.count = String(count);
  if (s.config.ratings) {
    const last = count ? s.answer.marks[count - 1] : null;
    setChecked(form, "[data-action=rateMark]", (b) => last?.rating === Number(b.dataset.value));
    const unrated = count ? s.answer.marks.filter((mark) => !Number.isInteger(mark.rating)).length : 0;
    counter.textContent += unrated ? ` (${unrated} not rated)` : "";
  }
  const note = form.querySelector("#rw-restored");
  note.hidden = !s.restored;
  if (s.restored) {
    const { wanted, placed } = s.restored;
    note.textContent =
      placed === wanted
        ? `Your ${wanted} saved mark${wanted === 1 ? " is" : "s are"} back on the image.`
        : `${placed} of your ${wanted} saved marks could be placed again.`;
  }
}

// Reflect the state's answer (and whether it can be changed now) in the panel.
export function updatePanel(form, s) {
  const busy = s.phase === "submitting" || !s.item;
  form.querySelectorAll("button").forEach((button) => {
    button.disabled = busy;
  });
  const { design } = s.config;
  if (design === "turing") {
    setChecked(form, "[data-action=call]", (b) => s.answer.call === b.dataset.value);
    setChecked(form, "[data-action=confidence]", (b) => s.answer.confidence === Number(b.dataset.value));
  } else if (design === "likert") {
    updateLikert(form, s);
  } else if (design === "pairwise") {
    setChecked(form, "[data-action=choice]", (b) => s.answer.choice === b.dataset.value);
  } else if (design === "hallucination") {
    updateHallucination(form, s);
  }
}

// The submit button: enabled for a complete answer to a shown item; "Saving…" while submitting.
export function updateSubmit(button, s) {
  button.disabled = !(isComplete(s) && s.phase === "ready" && s.viewer);
  button.replaceChildren(s.phase === "submitting" ? "Saving…" : "Submit and next ", el("kbd", { text: "Enter" }));
}
