// The reader workspace's keyboard: which key means what for the study's design.
//
// keyAction(event, state) → an event for the state machine ({type, …}), {command} for the viewer
// (which owns the marks), IGNORED_REPEAT for a key that is ours but must not act again while
// held, or null when the key is not ours (the browser and the viewer keep it).

export const IGNORED_REPEAT = Object.freeze({ repeat: true });

function turingKey(key, digit) {
  if (key === "r") return { type: "call", value: "real" };
  if (key === "s") return { type: "call", value: "synthetic" };
  if (digit) return { type: "confidence", value: digit };
  return null;
}

function likertKey(key, digit, event, s) {
  const last = s.config.scales.length - 1;
  if (digit) return { type: "rate", scale: s.activeScale, value: digit, advance: true };
  if (key === "ArrowDown" || (key === "Tab" && !event.shiftKey)) {
    if (key === "Tab" && s.activeScale === last) return null; // let Tab leave the panel
    return { type: "focusScale", index: s.activeScale + 1 };
  }
  if (key === "ArrowUp" || (key === "Tab" && event.shiftKey)) {
    if (key === "Tab" && s.activeScale === 0) return null;
    return { type: "focusScale", index: s.activeScale - 1 };
  }
  return null;
}

function pairwiseKey(key, s) {
  if (key === "ArrowLeft") return { type: "choice", value: "left" };
  if (key === "ArrowRight") return { type: "choice", value: "right" };
  if ((key === "ArrowDown" || key === "0") && s.config.allowNoPreference) return { type: "choice", value: "none" };
  return null;
}

function hallucinationKey(key, digit, once, s) {
  // Probe studies rate each mark: 1–5 set the rating of the current (last placed) mark. Shift+1–3 (window
  // presets) are read by event.code before this, so they never reach here.
  if (digit && s.config.ratings) return once ? { command: "rateMark", value: digit } : IGNORED_REPEAT;
  if (!["p", "b", "n", "Backspace", "Delete", "Escape"].includes(key)) return null;
  if (key === "Backspace" || key === "Delete") return { command: "removeLastMark" }; // repeats: one mark each
  if (!once) return IGNORED_REPEAT;
  if (key === "p") return { type: "tool", value: "point" };
  if (key === "b") return { type: "tool", value: "box" };
  if (key === "n") return { type: "none" };
  return s.markTool ? { type: "tool", value: s.markTool } : null; // Escape: back to window/level
}

/** The preset index (0-based) of Shift+1…9, else null. */
export function presetKey(event) {
  const match = event.shiftKey ? /^Digit([1-9])$/.exec(event.code || "") : null;
  return match ? Number(match[1]) - 1 : null;
}

export function keyAction(event, s) {
  const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
  const once = !event.repeat; // held keys must not submit or toggle again and again
  const preset = presetKey(event);
  if (preset !== null) return once ? { command: "preset", index: preset } : IGNORED_REPEAT;
  if (key === "Enter") return once ? { type: "submit" } : IGNORED_REPEAT;
  const digit = /^[1-5]$/.test(key) ? Number(key) : null;
  const { design } = s.config;
  if (design === "turing") return turingKey(key, digit);
  if (design === "likert") return likertKey(key, digit, event, s);
  if (design === "pairwise") return pairwiseKey(key, s);
  if (design === "hallucination") return hallucinationKey(key, digit, once, s);
  return null;
}
