// The reader's workspace (templates/readerstudy/workspace.html): one blinded item at a time.
//
// The server's state ({total, done, finished, item}) is the only truth: the page shows its
// item, autosaves the partial answer as a draft, and submits the answer with an idempotency
// key that is kept until a response arrives, so a retry after a network error never answers
// twice. Nothing about an item reaches the page but its token and image addresses.
//
// The page's own state is one object in reader_state.js's machine; this module renders it
// (render), runs the effects its transitions ask for (runEffects: fetch the state, mount the
// viewer, send the answer, autosave drafts) and turns clicks and keys into events.
//
// For tests: <body data-reader-state="loading|ready|submitting|finished|error"> ("ready" once the
// item's images are shown), data-done/data-total on #rw-progress, the item's token in
// #workspace[data-item], the draft's fate in #workspace[data-draft] (pending, saving, saved,
// error), and the viewer's own data-ready / data-marks.
import { HttpError, el, errorMessage, fetchBytes, fetchJSON, isTransient, showError, sleep } from "./dom.js";
import { keyAction } from "./reader_keys.js";
import { buildPanel, updatePanel, updateSubmit } from "./reader_panel.js";
import { createMachine, initialState, isComplete, payload } from "./reader_state.js";
import { keptView, viewFor } from "./reader_view.js";

const config = JSON.parse(document.getElementById("workspace-config").textContent);
const nodes = {
  root: document.getElementById("workspace"),
  viewerArea: document.getElementById("rw-viewer"),
  form: document.getElementById("rw-form"),
  submit: document.getElementById("rw-submit"),
  message: document.getElementById("rw-message"),
  status: document.getElementById("rw-status"),
  progress: document.getElementById("rw-progress"),
  body: document.getElementById("rw-body"),
  finished: document.getElementById("rw-finished"),
};

const DRAFT_DELAY_MS = 300;
const RETRY_DELAYS_MS = [500, 1000, 2000, 4000, 8000];
const renderer = new URLSearchParams(window.location.search).get("renderer") === "cpu" ? "cpu" : "auto";
const VIEWER_HELP = {
  turing: "Left drag: window/level · Right drag: zoom · Shift+drag: pan · Wheel, ↑/↓: slices · Shift+1–3: window",
  likert: "Left drag: window/level · Right drag: zoom · Shift+drag: pan · Wheel, PgUp/PgDn: slices · Shift+1–3: window",
  pairwise: "Left drag: window/level · Right drag: zoom · Shift+drag: pan · Wheel, PgUp/PgDn: slices · Shift+1–3: window",
  hallucination:
    "Left drag: window/level, or mark with P / B · Right drag: zoom · Shift+drag: pan · Wheel, ↑/↓: slices · Shift+1–3: window",
};

// --- Requests --------------------------------------------------------------------------------

function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  // randomUUID needs a secure context; getRandomValues does not.
  return [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0")).join("");
}

// Repeat `send` while the network or a proxy fails; the caller keeps its body (and key) as is.
async function withRetry(send) {
  for (let attempt = 0; ; attempt += 1) {
    try {
      const result = await send();
      if (attempt) machine.dispatch({ type: "reconnected" });
      return result;
    } catch (error) {
      if (!isTransient(error)) throw error;
    }
    machine.dispatch({ type: "retrying" });
    await sleep(RETRY_DELAYS_MS[Math.min(attempt, RETRY_DELAYS_MS.length - 1)]);
  }
}

const post = (url, body, keepalive = false) => fetchJSON(url, { method: "POST", body, keepalive, cache: "no-store" });

function detailOf(error, fallback) {
  if (!(error instanceof HttpError)) return errorMessage(error);
  if (error.status === 401) return "You have been logged out. Log in again in another tab, then press Enter.";
  if (error.status === 404) return "This study is not open to you any more (it may have been closed).";
  return error.detail || `${fallback} (${error.status}).`;
}

// Hallucination marks as the viewer has them now (else as last reported).
const currentMarks = (s) => (s.viewer?.getMarks ? s.viewer.getMarks() : s.answer.marks || []);

async function fetchState() {
  try {
    const state = await withRetry(() => fetchJSON(config.stateUrl, { cache: "no-store" }));
    machine.dispatch({ type: "loaded", state });
  } catch (error) {
    machine.dispatch({ type: "loadFailed", message: detailOf(error, "The study could not be loaded") });
  }
}

async function sendAnswer(s) {
  const body = { item: s.item.token, answer: payload(s, currentMarks(s)), key: s.pendingKey };
  try {
    const state = await withRetry(() => post(config.answerUrl, body));
    if (!state) throw new Error("The server sent no state back.");
    machine.dispatch({ type: "submitted", state });
  } catch (error) {
    if (error.status === 409 && error.data?.state) {
      machine.dispatch({ type: "submitted", state: error.data.state }); // answered already (another tab)
      return;
    }
    const keepKey = !(error instanceof HttpError) || error.status >= 500;
    machine.dispatch({ type: "rejected", keepKey, message: detailOf(error, "The answer could not be saved") });
  }
}

// --- Drafts ------------------------------------------------------------------------------------

// Drafts are sent one after another, so an older one never lands after a newer one.
function createDrafts() {
  let timer = null;
  let chain = Promise.resolve();
  function save({ keepalive = false } = {}) {
    clearTimeout(timer);
    timer = null;
    const s = machine.state;
    if (!s.item || s.phase === "submitting") return;
    const token = s.item.token;
    const body = { item: token, answer: payload(s, currentMarks(s)) };
    chain = chain.then(async () => {
      if (machine.state.item?.token !== token) return;
      machine.dispatch({ type: "draft", token, status: "saving" });
      try {
        await post(config.draftUrl, body, keepalive);
        machine.dispatch({ type: "draft", token, status: "saved" });
      } catch (error) {
        const message = error.status === 400 ? detailOf(error, "Not saved") : undefined;
        machine.dispatch({ type: "draft", token, status: "error", message });
      }
    });
  }
  return {
    schedule() {
      clearTimeout(timer);
      timer = setTimeout(save, DRAFT_DELAY_MS);
    },
    cancel() {
      clearTimeout(timer);
      timer = null;
    },
    // Leaving (or reloading) within the debounce: send the pending draft anyway.
    flush() {
      if (timer) save({ keepalive: true });
    },
  };
}

// --- Prefetching the next item ------------------------------------------------------------------

// The viewer's whole-array threshold (frontend/loader.js DEFAULT_MAX_WHOLE_BYTES): larger arrays
// load slice by slice, and are not prefetched.
const PREFETCH_MAX_BYTES = 32 * 1024 * 1024;

// Once an item is shown, the next one's arrays are fetched (through the same permission-checked
// data endpoints, which open an item's images to its reader from when it is next) and handed to
// its viewer when it comes; only the one next item is held.
function createPrefetcher() {
  let held = null; // {token, bytes: [a promise of an ArrayBuffer, or null, per image]}
  return {
    get token() {
      return held?.token ?? null;
    },
    want(next) {
      if (!next) {
        held = null;
        return;
      }
      if (held?.token === next.token) return;
      const bytes = next.images.map(({ header }) => {
        const size = header.whole_bytes ?? header.rows * header.columns * header.slices * 4;
        if (size > PREFETCH_MAX_BYTES) return null;
        const promise = fetchBytes(header.data_url);
        promise.catch(() => {}); // a failed prefetch: the viewer fetches the array itself
        return promise;
      });
      held = { token: next.token, bytes };
    },
    // The prefetched arrays of `token` (and forget them), else none.
    take(token) {
      if (held?.token !== token) return [];
      const { bytes } = held;
      held = null;
      return bytes;
    },
  };
}

// --- The viewer --------------------------------------------------------------------------------

// The viewports as tall as the window allows below the image area's top (less the viewer's
// toolbar and captions), so the whole image shows without scrolling.
function fitViewerHeight() {
  const top = nodes.viewerArea.getBoundingClientRect().top + window.scrollY;
  const available = Math.round(window.innerHeight - top - 105);
  nodes.root.style.setProperty("--rw-viewport-max", `${Math.max(280, available)}px`);
}

function viewerOptions(item, seq) {
  const { design } = config;
  const labels = item.images.length > 1 ? ["Left", "Right"] : ["Image"];
  const prefetched = prefetcher.take(item.token);
  return {
    // One window group: a pair is windowed alike, and the sides share zoom, pan and slice.
    viewports: item.images.map((image, i) => ({
      label: labels[i],
      header: image.header, // sent with the item, so showing it costs one request per image
      headerUrl: image.header_url,
      bytes: prefetched[i] || undefined,
      voiGroup: "item",
    })),
    sync: true,
    keepEngine: true, // one rendering engine for every item: its WebGL context is not made again
    // The last item's window (its preset, or the dragged values), zoom and pan, from the first frame on.
    initialView: viewFor(machine.state.view, item.images[0]?.header),
    columns: 2,
    frameOfReferenceUID: `item-${seq}`,
    renderer,
    resetKey: design === "turing" ? null : "r",
    help: VIEWER_HELP[design],
    annotate: design === "hallucination",
    measure: false, // no length tool in the reading room: its toolbar stays as the designs describe it
    onMarksChange: design === "hallucination" ? (marks) => machine.dispatch({ type: "marks", marks }) : undefined,
  };
}

// A draft's marks come back as marks on the image: {wanted, marks (those placed)}, or null.
function restoreMarks(viewer, answer) {
  if (!viewer.setMarks || answer.none || !answer.marks?.length) return null;
  return { wanted: answer.marks.length, marks: viewer.setMarks(answer.marks) };
}

// The view (window, zoom, pan) of a viewer about to go, for the next item's viewer (reader_view.js).
function readView(viewer, item) {
  const viewport = viewer.viewports?.[0];
  if (!viewport) return null;
  try {
    const voi = viewport.getProperties().voiRange;
    return keptView(voi, item?.images[0]?.header?.presets, viewport.getZoom(), viewport.getPan());
  } catch (error) {
    console.error(error);
    return null;
  }
}

// Mounts run one after another: a mount never starts while an older one still builds.
function createMounter() {
  let chain = Promise.resolve();
  let viewerModule = null;
  async function mountNow(seq, item) {
    if (machine.state.mountSeq !== seq) return;
    const host = el("div", { class: "rw-viewer-host" });
    nodes.viewerArea.replaceChildren(host);
    fitViewerHeight();
    try {
      viewerModule ||= import(nodes.root.dataset.viewerSrc).catch((error) => {
        viewerModule = null; // a later try imports again
        throw error;
      });
      const { mountViewers } = await viewerModule;
      const viewer = await mountViewers(host, viewerOptions(item, seq));
      if (machine.state.mountSeq !== seq) {
        viewer.destroy();
        return;
      }
      machine.dispatch({ type: "mounted", seq, viewer, restored: restoreMarks(viewer, machine.state.answer) });
    } catch (error) {
      console.error(error);
      machine.dispatch({ type: "mountFailed", seq, message: errorMessage(error) });
    }
  }
  return {
    mount(seq, item) {
      chain = chain.then(() => mountNow(seq, item)).catch((error) => console.error(error));
    },
  };
}

// --- Effects and rendering ---------------------------------------------------------------------

const drafts = createDrafts();
const mounter = createMounter();
const prefetcher = createPrefetcher();

function runEffects(prev, next) {
  if (prev.viewer && prev.viewer !== next.viewer) {
    const view = readView(prev.viewer, prev.item);
    prev.viewer.destroy();
    machine.dispatch({ type: "viewKept", view }); // queued: handled before the next mount starts
  }
  if (next.viewer?.setMarkTool && (next.viewer !== prev.viewer || next.markTool !== prev.markTool)) {
    next.viewer.setMarkTool(next.markTool);
  }
  if (next.viewer?.clearMarks && next.answer.none && !prev.answer.none) next.viewer.clearMarks();
  if (next.fetchSeq !== prev.fetchSeq) fetchState();
  if (next.mountSeq !== prev.mountSeq && next.item && next.phase === "loading") mounter.mount(next.mountSeq, next.item);
  if (next.phase === "submitting" && prev.phase !== "submitting") {
    drafts.cancel();
    sendAnswer(next);
  }
  if (next.answerRev !== prev.answerRev && next.item && next.phase !== "submitting") drafts.schedule();
  // After the current item is on screen, so its own images come first.
  if (next.phase === "ready" && (next.next?.token ?? null) !== prefetcher.token) prefetcher.want(next.next);
}

function renderProgress({ done, total }) {
  const { progress } = nodes;
  progress.dataset.done = String(done);
  progress.dataset.total = String(total);
  progress.setAttribute("aria-valuenow", String(done));
  progress.setAttribute("aria-valuemax", String(total));
  progress.querySelector(".rw-count").textContent = `${done} / ${total}`;
  progress.querySelector(".rw-bar-fill").style.width = `${total ? (100 * done) / total : 0}%`;
}

function renderError(s) {
  const what = s.error.kind === "images" ? "The images could not be shown" : "The study could not be loaded";
  const retry = { label: "Try again", class: "rw-small", onClick: () => machine.dispatch({ type: "retry" }) };
  showError(nodes.viewerArea, `${what}: ${s.error.message} `, { replace: true, action: retry });
}

function render(prev, s) {
  const { root } = nodes;
  document.body.dataset.readerState = s.phase;
  if (s.progress) renderProgress(s.progress);
  root.dataset.item = s.item?.token || "";
  root.dataset.draft = s.draft;
  if (s.error) root.dataset.error = s.error.message;
  else delete root.dataset.error;
  if (s.phase === "error" && prev.phase !== "error") renderError(s);
  nodes.message.textContent = s.message;
  nodes.message.hidden = !s.message;
  nodes.status.textContent = s.status.text;
  nodes.status.dataset.kind = s.status.kind;
  updatePanel(nodes.form, s);
  updateSubmit(nodes.submit, s);
  root.dataset.complete = isComplete(s) ? "1" : "0";
  if (s.phase === "finished" && prev.phase !== "finished") {
    nodes.body.hidden = true;
    nodes.finished.hidden = false;
    if (!s.finished.complete) nodes.finished.querySelector("h2").textContent = "Nothing to read";
  }
}

const machine = createMachine(initialState(config), (prev, next) => {
  runEffects(prev, next);
  render(prev, next);
});

// --- Input -------------------------------------------------------------------------------------

// Viewer commands go straight to the viewer, which owns the marks: its onMarksChange reports back.
const VIEWER_COMMANDS = {
  removeLastMark: (viewer) => viewer.removeLastMark?.(),
  removeLast: (viewer) => viewer.removeLastMark?.(),
  clearMarks: (viewer) => viewer.clearMarks?.(),
  rateMark: (viewer, action) => viewer.rateLastMark?.(action.value), // probe studies: 1–5 on the current mark
  preset: (viewer, action) => viewer.setPreset?.(0, action.index), // Shift+1…: the item's window group
};

function act(action) {
  if (action.command) {
    const { viewer, item } = machine.state;
    const presets = item?.images[0]?.header?.presets || [];
    if (action.command === "preset" && action.index >= presets.length) return; // Shift+4 of three presets
    if (viewer) VIEWER_COMMANDS[action.command](viewer, action);
  } else {
    machine.dispatch(action.type === "submit" ? { ...action, key: newKey() } : action);
  }
}

nodes.form.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-action]");
  if (!button || button.disabled || !machine.state.item) return;
  const { action, value, scale } = button.dataset;
  if (action in VIEWER_COMMANDS) act({ command: action, value: Number(value) });
  else if (action === "rate") act({ type: "rate", scale: Number(scale), value: Number(value), advance: false });
  else act({ type: action, value });
});

nodes.form.addEventListener("focusin", (event) => {
  const fieldset = event.target.closest(".rw-scale");
  const index = fieldset ? Number(fieldset.dataset.index) : null;
  if (index !== null && index !== machine.state.activeScale) act({ type: "focusScale", index });
});

nodes.submit.addEventListener("click", () => act({ type: "submit" }));
// Answers go through the state machine, never as a form post (Enter in a field must not reload the page).
nodes.form.addEventListener("submit", (event) => event.preventDefault());

// Keys that belong to what has the focus: text entry, and anything outside the workspace
// (the site's header: Enter on "Log out" must not submit an answer).
function isElsewhere(event) {
  const target = event.target;
  if (!(target instanceof Element) || target === document.body || target === document.documentElement) return false;
  if (!nodes.root.contains(target)) return true;
  if (target.closest("textarea, select, [contenteditable=''], [contenteditable=true]")) return true;
  if (event.key === "Enter" && target.closest("a[href], summary")) return true;
  const input = target.closest("input");
  return Boolean(input) && !["radio", "checkbox", "button", "submit", "reset"].includes(input.type);
}

// Capture phase: before the viewer's own keys (R resets it, arrows scroll slices). A key that is
// ours goes neither to the browser nor to the viewer.
function onKeydown(event) {
  if (event.ctrlKey || event.metaKey || event.altKey || event.isComposing) return;
  const s = machine.state;
  if (s.phase === "submitting") {
    if (event.key === "Enter") event.preventDefault(); // no second submit, no click on a focused button
    return;
  }
  if (s.phase === "finished" || isElsewhere(event)) return;
  let action = null;
  if (s.phase === "error" && event.key === "Enter") action = event.repeat ? {} : { type: "retry" };
  else if (s.item) action = keyAction(event, s);
  if (!action) return;
  event.preventDefault();
  event.stopPropagation();
  if (action.type || action.command) act(action);
}

window.addEventListener("keydown", onKeydown, true);
window.addEventListener("pagehide", () => drafts.flush());
// Registered before any viewer's own resize listener, so the viewer resizes to the new size.
window.addEventListener("resize", fitViewerHeight);

nodes.form.replaceChildren(...buildPanel(machine.state.config));
render(machine.state, machine.state);
machine.dispatch({ type: "start" });
