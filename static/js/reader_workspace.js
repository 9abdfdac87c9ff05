// The reader's workspace (templates/readerstudy/workspace.html): one blinded item at a time.
//
// The server's state ({total, done, finished, item}) is the only truth: the page shows its
// item, autosaves the partial answer as a draft, and submits the answer with an idempotency
// key that is kept until a response arrives, so a retry after a network error never answers
// twice. Nothing about an item reaches the page but its token and image addresses.
//
// For tests: <body data-reader-state="loading|ready|submitting|finished"> ("ready" once the
// item's images are shown), data-done/data-total on #rw-progress, the item's token in
// #workspace[data-item], the draft's fate in #workspace[data-draft] (pending, saving, saved,
// error), and the viewer's own data-ready / data-marks.

const config = JSON.parse(document.getElementById("workspace-config").textContent);
const root = document.getElementById("workspace");
const viewerArea = document.getElementById("rw-viewer");
const form = document.getElementById("rw-form");
const submitButton = document.getElementById("rw-submit");
const messageNode = document.getElementById("rw-message");
const statusNode = document.getElementById("rw-status");
const progress = document.getElementById("rw-progress");

const DRAFT_DELAY_MS = 300;
const RETRY_DELAYS_MS = [500, 1000, 2000, 4000, 8000];
const design = config.design;
const scales = config.scales || [];
const renderer = new URLSearchParams(window.location.search).get("renderer") === "cpu" ? "cpu" : "auto";

let phase = "loading";
let item = null; // the current item: {token, images, draft}
let answer = {};
let viewer = null; // the mounted viewer's controller, once its images are shown
let viewerModule = null;
let mountSeq = 0;
let mountChain = Promise.resolve();
let pendingKey = null; // the idempotency key of the answer being submitted
let draftTimer = null;
let draftChain = Promise.resolve();
let activeScale = 0; // Likert: the scale that 1–5 rate
let markTool = null; // hallucination: "point" | "box" | null (kept from item to item)

// --- Helpers -------------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  children.forEach((child) => child != null && node.append(child));
  return node;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  // randomUUID needs a secure context; getRandomValues does not.
  return [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  if (match) return decodeURIComponent(match[1]);
  return document.querySelector("input[name=csrfmiddlewaretoken]")?.value || "";
}

class NetworkError extends Error {}

// One request; a failure to reach the server (or to read its answer) is a NetworkError.
async function request(url, { method = "GET", body, keepalive = false } = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") {
    headers["Content-Type"] = "application/json";
    headers["X-CSRFToken"] = csrfToken();
  }
  try {
    const response = await fetch(url, {
      method,
      headers,
      credentials: "same-origin",
      cache: "no-store",
      keepalive,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (_) {
      /* an HTML error page */
    }
    return { status: response.status, data };
  } catch (error) {
    throw new NetworkError(String(error && error.message ? error.message : error));
  }
}

const transient = (status) => status === 502 || status === 503 || status === 504;

// Repeat `send` while the network or a proxy fails; the caller keeps its body (and key) as is.
async function withRetry(send) {
  for (let attempt = 0; ; attempt += 1) {
    try {
      const result = await send();
      if (!transient(result.status)) {
        if (attempt) setStatus("");
        return result;
      }
    } catch (error) {
      if (!(error instanceof NetworkError)) throw error;
    }
    setStatus("Connection lost: retrying…", "warn");
    await sleep(RETRY_DELAYS_MS[Math.min(attempt, RETRY_DELAYS_MS.length - 1)]);
  }
}

function setPhase(next) {
  phase = next;
  document.body.dataset.readerState = next;
  updateForm();
}

function setStatus(text, kind = "") {
  statusNode.textContent = text;
  statusNode.dataset.kind = kind;
}

function showMessage(text) {
  messageNode.textContent = text || "";
  messageNode.hidden = !text;
}

function detailOf(result, fallback) {
  if (result.status === 401) return "You have been logged out. Log in again in another tab, then press Enter.";
  if (result.status === 404) return "This study is not open to you any more (it may have been closed).";
  return (result.data && result.data.detail) || `${fallback} (${result.status}).`;
}

// --- Answers -------------------------------------------------------------------------------

const allowedChoices = config.allowNoPreference ? ["left", "right", "none"] : ["left", "right"];

// The answer to start an item from: its draft (validated by the server as a partial answer).
function startingAnswer(draft) {
  const value = draft && typeof draft === "object" ? structuredClone(draft) : {};
  if (design === "likert") return { scores: { ...(value.scores || {}) } };
  if (design === "hallucination") return value.none ? { none: true } : { marks: value.marks || [] };
  return value;
}

function isComplete() {
  if (design === "turing") return Boolean(answer.call) && Number.isInteger(answer.confidence);
  if (design === "likert") return scales.every((scale) => Number.isInteger(answer.scores[scale.key]));
  if (design === "pairwise") return allowedChoices.includes(answer.choice);
  if (design === "hallucination") return answer.none === true || currentMarks().length > 0;
  return false;
}

function currentMarks() {
  return viewer && viewer.getMarks ? viewer.getMarks() : answer.marks || [];
}

// What is sent: hallucination marks are read from the viewer at that moment.
function payload() {
  if (design === "hallucination") return answer.none ? { none: true } : { marks: currentMarks() };
  return answer;
}

function changed() {
  showMessage("");
  updateForm();
  scheduleDraft();
}

const actions = {
  call(value) {
    answer.call = value;
    changed();
  },
  confidence(value) {
    answer.confidence = Number(value);
    changed();
  },
  rate(scaleIndex, value, advance = false) {
    const scale = scales[Number(scaleIndex)];
    answer.scores[scale.key] = Number(value);
    activeScale = advance ? Math.min(Number(scaleIndex) + 1, scales.length - 1) : Number(scaleIndex);
    changed();
  },
  focusScale(index) {
    activeScale = Math.max(0, Math.min(scales.length - 1, index));
    updateForm();
  },
  choice(value) {
    if (!allowedChoices.includes(value)) return;
    answer.choice = value;
    changed();
  },
  tool(kind) {
    markTool = markTool === kind ? null : kind;
    if (markTool && answer.none) {
      answer = { marks: currentMarks() };
      changed();
    }
    viewer?.setMarkTool?.(markTool);
    updateForm();
  },
  none() {
    if (answer.none) {
      answer = { marks: [] };
    } else {
      markTool = null;
      viewer?.setMarkTool?.(null);
      viewer?.clearMarks?.();
      answer = { none: true };
    }
    changed();
  },
  removeLast() {
    viewer?.removeLastMark?.();
  },
  clearMarks() {
    viewer?.clearMarks?.();
  },
};

function onMarksChange(marks) {
  // A mark says there is a hallucination: it ends "none".
  answer = marks.length || !answer.none ? { marks } : answer;
  changed();
}

// --- The question panel ----------------------------------------------------------------------

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

function renderForm() {
  const parts = [];
  if (design === "turing") {
    parts.push(
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
    );
  } else if (design === "likert") {
    scales.forEach((scale, i) => {
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
      parts.push(fieldset);
    });
  } else if (design === "pairwise") {
    const buttons = [choiceButton("choice", "left", "Left", "←")];
    if (config.allowNoPreference) buttons.push(choiceButton("choice", "none", "No preference", "↓"));
    buttons.push(choiceButton("choice", "right", "Right", "→"));
    const choices = el("div", { class: `rw-choices rw-pair n${buttons.length}`, role: "radiogroup" }, ...buttons);
    parts.push(group("Which image do you prefer?", choices));
  } else if (design === "hallucination") {
    const tool = (kind, label, key) =>
      el(
        "button",
        { type: "button", class: "rw-tool", "aria-pressed": "false", "data-action": "tool", "data-value": kind },
        el("span", { text: label }),
        el("kbd", { text: key }),
      );
    parts.push(
      group(
        "Mark anything that should not be there",
        el("p", {
          class: "rw-help",
          text: "Pick a tool, then click (point) or drag (box) on the image. Drag a mark to move it.",
        }),
        el("div", { class: "rw-tools" }, tool("point", "Point", "P"), tool("box", "Box", "B")),
        el(
          "div",
          { class: "rw-marks" },
          el("span", { id: "rw-mark-count", class: "rw-mark-count", text: "No marks" }),
          el("button", { type: "button", class: "rw-small", "data-action": "removeLast", text: "Remove last ⌫" }),
          el("button", { type: "button", class: "rw-small", "data-action": "clearMarks", text: "Clear" }),
        ),
        el("p", { id: "rw-restored", class: "rw-help", hidden: "" }),
      ),
      group(
        "Or",
        el(
          "button",
          { type: "button", class: "rw-choice rw-none", "aria-pressed": "false", "data-action": "none" },
          el("span", { class: "rw-choice-label", text: "No hallucination" }),
          el("kbd", { text: "N" }),
        ),
      ),
    );
  }
  form.replaceChildren(...parts);
  updateForm();
}

function setChecked(selector, isChecked) {
  form.querySelectorAll(selector).forEach((node) => {
    node.setAttribute(node.getAttribute("role") === "radio" ? "aria-checked" : "aria-pressed", String(isChecked(node)));
  });
}

// Reflect `answer` (and the phase) in the panel.
function updateForm() {
  const busy = phase === "submitting" || !item;
  form.querySelectorAll("button").forEach((button) => {
    button.disabled = busy;
  });
  if (design === "turing") {
    setChecked("[data-action=call]", (b) => answer.call === b.dataset.value);
    setChecked("[data-action=confidence]", (b) => answer.confidence === Number(b.dataset.value));
  } else if (design === "likert") {
    setChecked("[data-action=rate]", (b) => answer.scores?.[scales[b.dataset.scale].key] === Number(b.dataset.value));
    form.querySelectorAll(".rw-scale").forEach((fieldset) => {
      const active = Number(fieldset.dataset.index) === activeScale;
      fieldset.classList.toggle("rw-active", active);
      if (active) fieldset.setAttribute("aria-current", "true");
      else fieldset.removeAttribute("aria-current");
    });
  } else if (design === "pairwise") {
    setChecked("[data-action=choice]", (b) => answer.choice === b.dataset.value);
  } else if (design === "hallucination") {
    setChecked("[data-action=tool]", (b) => markTool === b.dataset.value);
    setChecked("[data-action=none]", () => answer.none === true);
    const count = answer.none ? 0 : currentMarks().length;
    const counter = form.querySelector("#rw-mark-count");
    if (counter) {
      counter.textContent = count ? `${count} mark${count === 1 ? "" : "s"}` : "No marks";
      counter.dataset.count = String(count);
    }
  }
  const complete = Boolean(item) && isComplete();
  root.dataset.complete = complete ? "1" : "0";
  submitButton.disabled = !(complete && phase === "ready" && viewer);
  submitButton.textContent = "";
  submitButton.append(phase === "submitting" ? "Saving…" : "Submit and next ", el("kbd", { text: "Enter" }));
}

form.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-action]");
  if (!button || button.disabled || !item) return;
  const { action, value } = button.dataset;
  if (action === "rate") actions.rate(button.dataset.scale, value);
  else actions[action]?.(value);
});

form.addEventListener("focusin", (event) => {
  const fieldset = event.target.closest(".rw-scale");
  if (fieldset && Number(fieldset.dataset.index) !== activeScale) actions.focusScale(Number(fieldset.dataset.index));
});

submitButton.addEventListener("click", () => submit());

// --- Keyboard ------------------------------------------------------------------------------

// Keys that belong to what has the focus: text entry, and anything outside the workspace
// (the site's header: Enter on "Log out" must not submit an answer).
function isElsewhere(event) {
  const target = event.target;
  if (!(target instanceof Element) || target === document.body || target === document.documentElement) return false;
  if (!root.contains(target)) return true;
  if (target.closest("textarea, select, [contenteditable=''], [contenteditable=true]")) return true;
  if (event.key === "Enter" && target.closest("a[href], summary")) return true;
  const input = target.closest("input");
  return Boolean(input) && !["radio", "checkbox", "button", "submit", "reset"].includes(input.type);
}

// Returns true when the key was ours (so neither the browser nor the viewer acts on it).
function handleKey(event) {
  const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
  const once = !event.repeat; // held keys must not submit or toggle again and again
  if (key === "Enter") {
    if (!once) return true;
    if (isComplete()) submit();
    else showMessage(incompleteMessage());
    return true;
  }
  const digit = /^[1-5]$/.test(key) ? Number(key) : null;
  if (design === "turing") {
    if (key === "r") actions.call("real");
    else if (key === "s") actions.call("synthetic");
    else if (digit) actions.confidence(digit);
    else return false;
    return true;
  }
  if (design === "likert") {
    if (digit) actions.rate(activeScale, digit, true);
    else if (key === "ArrowDown" || (key === "Tab" && !event.shiftKey)) {
      if (key === "Tab" && activeScale === scales.length - 1) return false; // let Tab leave the panel
      actions.focusScale(activeScale + 1);
    } else if (key === "ArrowUp" || (key === "Tab" && event.shiftKey)) {
      if (key === "Tab" && activeScale === 0) return false;
      actions.focusScale(activeScale - 1);
    } else return false;
    return true;
  }
  if (design === "pairwise") {
    if (key === "ArrowLeft") actions.choice("left");
    else if (key === "ArrowRight") actions.choice("right");
    else if ((key === "ArrowDown" || key === "0") && config.allowNoPreference) actions.choice("none");
    else return false;
    return true;
  }
  if (design === "hallucination") {
    if (!["p", "b", "n", "Backspace", "Delete", "Escape"].includes(key)) return false;
    if (!once && key !== "Backspace" && key !== "Delete") return true;
    if (key === "p") actions.tool("point");
    else if (key === "b") actions.tool("box");
    else if (key === "n") actions.none();
    else if (key === "Escape") {
      if (!markTool) return false;
      actions.tool(markTool);
    } else actions.removeLast();
    return true;
  }
  return false;
}

function incompleteMessage() {
  if (design === "turing") return "Choose real or synthetic (R / S) and a confidence (1–5) first.";
  if (design === "likert") return "Rate every scale (1–5) first.";
  if (design === "pairwise") return "Choose an image first.";
  return "Mark at least one structure, or choose “No hallucination” (N), first.";
}

// Capture phase: before the viewer's own keys (R resets it, arrows scroll slices).
window.addEventListener(
  "keydown",
  (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || event.isComposing) return;
    if (isElsewhere(event) || !item || phase === "submitting" || phase === "finished") {
      if (phase === "submitting" && event.key === "Enter") event.preventDefault();
      return;
    }
    if (handleKey(event)) {
      event.preventDefault();
      event.stopPropagation();
    }
  },
  true,
);

// --- Drafts --------------------------------------------------------------------------------

function scheduleDraft() {
  if (!item) return;
  clearTimeout(draftTimer);
  root.dataset.draft = "pending";
  draftTimer = setTimeout(saveDraft, DRAFT_DELAY_MS);
}

// Drafts are sent one after another, so an older one never lands after a newer one.
function saveDraft({ keepalive = false } = {}) {
  clearTimeout(draftTimer);
  draftTimer = null;
  if (!item || phase === "submitting") return;
  const token = item.token;
  const body = { item: token, answer: payload() };
  draftChain = draftChain.then(async () => {
    if (item?.token !== token) return;
    root.dataset.draft = "saving";
    let status;
    try {
      const result = await request(config.draftUrl, { method: "POST", body, keepalive });
      status = result.status === 204 ? "saved" : "error";
      if (item?.token === token && result.status === 400) showMessage(detailOf(result, "Not saved"));
    } catch (_) {
      status = "error";
    }
    if (item?.token !== token) return;
    root.dataset.draft = status;
    setStatus(status === "saved" ? "Draft saved" : "Draft not saved", status === "saved" ? "" : "warn");
  });
}

// Leaving (or reloading) within the debounce: send the pending draft anyway.
window.addEventListener("pagehide", () => {
  if (draftTimer) saveDraft({ keepalive: true });
});

// --- The viewer ------------------------------------------------------------------------------

const VIEWER_HELP = {
  turing: "Left drag: window/level · Right drag: zoom · Shift+drag: pan · Wheel, ↑/↓: slices",
  likert: "Left drag: window/level · Right drag: zoom · Shift+drag: pan · Wheel, PgUp/PgDn: slices",
  pairwise: "Left drag: window/level · Right drag: zoom · Shift+drag: pan · Wheel, PgUp/PgDn: slices",
  hallucination:
    "Left drag: window/level, or mark with P / B · Right drag: zoom · Shift+drag: pan · Wheel, ↑/↓: slices",
};

// The viewports as tall as the window allows below the image area's top (less the viewer's
// toolbar and captions), so the whole image shows without scrolling.
function fitViewerHeight() {
  const top = viewerArea.getBoundingClientRect().top + window.scrollY;
  const available = Math.round(window.innerHeight - top - 105);
  root.style.setProperty("--rw-viewport-max", `${Math.max(280, available)}px`);
}
// Registered before any viewer's own resize listener, so the viewer resizes to the new size.
window.addEventListener("resize", fitViewerHeight);

function teardownViewer() {
  if (viewer) {
    viewer.destroy();
    viewer = null;
  }
}

// Mounts run one after another: a mount never starts while an older one still builds.
function mountViewer() {
  const seq = ++mountSeq;
  mountChain = mountChain.then(() => mountNow(seq)).catch((error) => console.error(error));
  return mountChain;
}

async function mountNow(seq) {
  if (seq !== mountSeq || !item) return;
  teardownViewer();
  setPhase("loading");
  const shown = item;
  const host = el("div", { class: "rw-viewer-host" });
  viewerArea.replaceChildren(host);
  fitViewerHeight();
  delete root.dataset.error;
  const labels = shown.images.length > 1 ? ["Left", "Right"] : ["Image"];
  try {
    viewerModule ||= import(root.dataset.viewerSrc);
    const { mountViewers } = await viewerModule;
    const mounted = await mountViewers(host, {
      // One window group: a pair is windowed alike, and the sides share zoom, pan and slice.
      viewports: shown.images.map((image, i) => ({
        label: labels[i],
        header: image.header, // sent with the item, so showing it costs one request per image
        headerUrl: image.header_url,
        voiGroup: "item",
      })),
      sync: true,
      columns: 2,
      frameOfReferenceUID: `item-${seq}`,
      renderer,
      resetKey: design === "turing" ? null : "r",
      help: VIEWER_HELP[design],
      annotate: design === "hallucination",
      onMarksChange: design === "hallucination" ? onMarksChange : undefined,
    });
    if (seq !== mountSeq || item !== shown) {
      mounted.destroy();
      return;
    }
    viewer = mounted;
    if (design === "hallucination") restoreMarks();
    setPhase("ready");
  } catch (error) {
    if (seq !== mountSeq) return;
    console.error(error);
    root.dataset.error = String(error && error.message ? error.message : error);
    const retry = el("button", { type: "button", class: "rw-small", text: "Try again" });
    retry.addEventListener("click", () => mountViewer());
    viewerArea.replaceChildren(
      el("div", { class: "error-box" }, `The images could not be shown: ${root.dataset.error} `, retry),
    );
    updateForm();
  }
}

// A draft's marks come back as marks on the image (re-created annotations).
function restoreMarks() {
  viewer.setMarkTool(markTool);
  const note = form.querySelector("#rw-restored");
  if (answer.none || !answer.marks?.length) return;
  const wanted = answer.marks.length;
  const restored = viewer.setMarks(answer.marks);
  answer = { marks: restored };
  if (note) {
    note.hidden = false;
    note.textContent =
      restored.length === wanted
        ? `Your ${wanted} saved mark${wanted === 1 ? " is" : "s are"} back on the image.`
        : `${restored.length} of your ${wanted} saved marks could be placed again.`;
  }
  updateForm();
}

// --- State ---------------------------------------------------------------------------------

function showProgress(state) {
  progress.dataset.done = String(state.done);
  progress.dataset.total = String(state.total);
  progress.setAttribute("aria-valuenow", String(state.done));
  progress.setAttribute("aria-valuemax", String(state.total));
  progress.querySelector(".rw-count").textContent = `${state.done} / ${state.total}`;
  const percent = state.total ? (100 * state.done) / state.total : 0;
  progress.querySelector(".rw-bar-fill").style.width = `${percent}%`;
}

function show(state) {
  showProgress(state);
  if (state.finished || !state.item) {
    finish(state);
    return;
  }
  if (item && item.token === state.item.token) {
    setPhase(viewer ? "ready" : "loading");
    return;
  }
  item = state.item;
  root.dataset.item = item.token;
  root.dataset.draft = item.draft ? "saved" : "";
  answer = startingAnswer(item.draft);
  activeScale = 0;
  if (design === "likert") {
    const firstOpen = scales.findIndex((scale) => !Number.isInteger(answer.scores[scale.key]));
    activeScale = firstOpen < 0 ? 0 : firstOpen;
  }
  showMessage("");
  setStatus(item.draft ? "Draft restored" : "");
  renderForm();
  mountViewer();
}

function finish(state) {
  mountSeq += 1;
  teardownViewer();
  item = null;
  root.dataset.item = "";
  document.getElementById("rw-body").hidden = true;
  const finished = document.getElementById("rw-finished");
  finished.hidden = false;
  if (!state.finished) finished.querySelector("h2").textContent = "Nothing to read";
  setPhase("finished");
}

async function submit() {
  if (phase !== "ready" || !viewer || !item || !isComplete()) return;
  clearTimeout(draftTimer);
  draftTimer = null;
  setPhase("submitting");
  showMessage("");
  pendingKey ||= newKey();
  const body = { item: item.token, answer: payload(), key: pendingKey };
  let result;
  try {
    result = await withRetry(() => request(config.answerUrl, { method: "POST", body }));
  } catch (error) {
    setPhase("ready");
    showMessage(String(error));
    return;
  }
  if (result.status === 200 && result.data) {
    pendingKey = null;
    show(result.data);
  } else if (result.status === 409 && result.data?.state) {
    pendingKey = null; // answered already (another tab): carry on from where the server is
    show(result.data.state);
  } else {
    // 400: nothing was stored and the reader changes the answer; 5xx: the answer may be stored,
    // so the next try keeps the key.
    if (result.status < 500) pendingKey = null;
    setPhase("ready");
    showMessage(detailOf(result, "The answer could not be saved"));
  }
}

async function load() {
  setPhase("loading");
  let result;
  try {
    result = await withRetry(() => request(config.stateUrl));
  } catch (error) {
    showMessage(String(error));
    return;
  }
  if (result.status === 200 && result.data) show(result.data);
  else showMessage(detailOf(result, "The study could not be loaded"));
}

load();
