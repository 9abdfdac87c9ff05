// The reader workspace's state machine (no DOM: reader_workspace.js renders the state and runs
// the effects that its transitions call for).
//
// One state object; `createMachine` holds it and its `dispatch(event)` is the only writer: it
// looks the event up in TRANSITIONS[state.phase] (an event a phase does not list is ignored),
// computes the next state and hands (previous, next, event) to the page. The phases (also
// <body data-reader-state>):
//
//   loading     fetching the study's state, or showing the current item's images
//   ready       the item's images are shown: answer and submit
//   submitting  the answer is on its way (retried with the same idempotency key on network errors)
//   finished    nothing (more) to read
//   error       the study's state or the item's images could not be loaded; `retry` tries again
//
//   loading ──loaded──▶ loading (new item: mount) ──mounted──▶ ready ──submit──▶ submitting
//   submitting ──submitted──▶ loading (next item) | ready (same item) | finished
//   submitting ──rejected──▶ ready (with the server's message)
//   loading ──loadFailed | mountFailed──▶ error ──retry──▶ loading
//
// Effects are asked for through the state itself: a new `fetchSeq` (fetch the study's state), a
// new `mountSeq` while loading an item (show its images; a mount whose seq is no longer current
// is dropped), entering `submitting` (send the answer under `pendingKey`), a new `answerRev`
// (autosave a draft), `next` named while `ready` (prefetch its images), a `viewer` replaced (destroy the old one: its window, zoom and pan are read
// off it first and come back as `viewKept`, so the next item's viewer starts from `view`).

export function initialState(config) {
  return Object.freeze({
    config: Object.freeze({
      design: config.design,
      scales: config.scales || [],
      allowNoPreference: Boolean(config.allowNoPreference),
      ratings: Boolean(config.ratings), // hallucination probe studies: every mark rated 1–5
    }),
    phase: "loading",
    progress: null, // {done, total}, from the server
    item: null, // the current item: {token, images, draft}
    next: null, // the item after it, as the server names it for prefetching: {token, images} or null
    answer: {},
    answerRev: 0, // bumped by every edit of the answer: the draft autosave follows it
    activeScale: 0, // Likert: the scale that 1–5 rate
    markTool: null, // hallucination: "point" | "box" | null (kept from item to item)
    viewer: null, // the mounted viewer's controller, once the item's images are shown
    view: null, // the view kept from item to item (reader_view.js keptView): window, zoom, pan
    fetchSeq: 0,
    mountSeq: 0,
    pendingKey: null, // the idempotency key of the answer being submitted (kept until a response)
    draft: "", // the draft's fate: "" | pending | saving | saved | error
    message: "", // for the reader, beside the question
    status: { text: "", kind: "" }, // connection and draft status
    error: null, // {kind: "state" | "images", message} in the error phase
    restored: null, // hallucination: {wanted, placed} marks of a draft put back on the image
    finished: null, // {complete}: false when there was nothing to read at all
  });
}

// --- Answers ---------------------------------------------------------------------------------

export function allowedChoices(config) {
  return config.allowNoPreference ? ["left", "right", "none"] : ["left", "right"];
}

// The answer to start an item from: its draft (validated by the server as a partial answer).
export function startingAnswer(config, draft) {
  const value = draft && typeof draft === "object" ? structuredClone(draft) : {};
  if (config.design === "likert") return { scores: { ...(value.scores || {}) } };
  if (config.design === "hallucination") return value.none ? { none: true } : { marks: value.marks || [] };
  return value;
}

export function isComplete({ config, answer, item }) {
  if (!item) return false;
  if (config.design === "turing") return Boolean(answer.call) && Number.isInteger(answer.confidence);
  if (config.design === "likert") return config.scales.every((scale) => Number.isInteger(answer.scores?.[scale.key]));
  if (config.design === "pairwise") return allowedChoices(config).includes(answer.choice);
  if (config.design === "hallucination") {
    const marks = answer.marks || [];
    if (answer.none === true) return true;
    return marks.length > 0 && (!config.ratings || marks.every((mark) => Number.isInteger(mark.rating)));
  }
  return false;
}

export function incompleteMessage(design, ratings = false) {
  if (design === "hallucination" && ratings) {
    return "Mark at least one structure and rate each mark (1–5), or choose “No hallucination” (N), first.";
  }
  if (design === "turing") return "Choose real or synthetic (R / S) and a confidence (1–5) first.";
  if (design === "likert") return "Rate every scale (1–5) first.";
  if (design === "pairwise") return "Choose an image first.";
  return "Mark at least one structure, or choose “No hallucination” (N), first.";
}

// What is sent for the answer; `marks` are the viewer's at that moment (hallucination).
export function payload({ config, answer }, marks) {
  if (config.design === "hallucination") return answer.none ? { none: true } : { marks };
  return answer;
}

// The first scale not rated yet (Likert), else the first.
function firstOpenScale(config, answer) {
  if (config.design !== "likert") return 0;
  const open = config.scales.findIndex((scale) => !Number.isInteger(answer.scores[scale.key]));
  return open < 0 ? 0 : open;
}

// --- Transitions -----------------------------------------------------------------------------

const clampScale = (s, index) => Math.max(0, Math.min(s.config.scales.length - 1, index));

// An edit of the current item's answer: clears the message and asks for a draft.
function edit(s, answer, extra = {}) {
  if (!s.item) return s;
  return { ...s, ...extra, answer, answerRev: s.answerRev + 1, draft: "pending", message: "" };
}

// A state from the server ({total, done, finished, item}): the same item, the next one, or the end.
function fromServer(s, server) {
  const progress = { done: server.done, total: server.total };
  if (server.finished || !server.item) {
    const finished = { complete: Boolean(server.finished) };
    return { ...s, phase: "finished", progress, item: null, next: null, viewer: null, mountSeq: s.mountSeq + 1, finished, error: null };
  }
  const next = server.next || null;
  if (s.item && s.item.token === server.item.token) {
    return s.viewer ? { ...s, phase: "ready", progress, next } : { ...s, phase: "loading", progress, next, mountSeq: s.mountSeq + 1 };
  }
  const item = server.item;
  const answer = startingAnswer(s.config, item.draft);
  return {
    ...s,
    phase: "loading",
    progress,
    next,
    item,
    answer,
    activeScale: firstOpenScale(s.config, answer),
    viewer: null,
    mountSeq: s.mountSeq + 1,
    draft: item.draft ? "saved" : "",
    message: "",
    status: { text: item.draft ? "Draft restored" : "", kind: "" },
    error: null,
    restored: null,
  };
}

// Events that edit the answer (or the tools), valid whenever an item is on the page.
const ANSWERING = {
  call: (s, e) => edit(s, { ...s.answer, call: e.value }),
  confidence: (s, e) => edit(s, { ...s.answer, confidence: Number(e.value) }),
  rate(s, e) {
    const index = Number(e.scale);
    const scale = s.config.scales[index];
    if (!scale) return s;
    const activeScale = e.advance ? clampScale(s, index + 1) : index;
    return edit(s, { ...s.answer, scores: { ...s.answer.scores, [scale.key]: Number(e.value) } }, { activeScale });
  },
  focusScale: (s, e) => (s.item ? { ...s, activeScale: clampScale(s, e.index) } : s),
  choice: (s, e) => (allowedChoices(s.config).includes(e.value) ? edit(s, { ...s.answer, choice: e.value }) : s),
  tool(s, e) {
    const markTool = s.markTool === e.value ? null : e.value;
    // Taking a tool ends "no hallucination" (whose marks were cleared).
    return markTool && s.answer.none ? edit(s, { marks: [] }, { markTool }) : { ...s, markTool };
  },
  none: (s) => (s.answer.none ? edit(s, { marks: [] }) : edit(s, { none: true }, { markTool: null })),
  // The viewer's marks changed: a mark says there is a hallucination, so it ends "none".
  marks: (s, e) => edit(s, e.marks.length || !s.answer.none ? { marks: e.marks } : s.answer),
  draft(s, e) {
    if (s.item?.token !== e.token) return s; // a draft of an item already left
    if (e.status === "saving") return { ...s, draft: "saving" };
    const saved = e.status === "saved";
    const status = { text: saved ? "Draft saved" : "Draft not saved", kind: saved ? "" : "warn" };
    return { ...s, draft: e.status, status, message: e.message ?? s.message };
  },
  submit(s, e) {
    if (!s.item) return s;
    if (!isComplete(s)) return { ...s, message: incompleteMessage(s.config.design, s.config.ratings) };
    if (s.phase !== "ready" || !s.viewer) return s;
    return { ...s, phase: "submitting", pendingKey: s.pendingKey || e.key, message: "" };
  },
};

// The view read off a viewer that goes: kept for the next mount (any phase but finished).
const KEEPING = {
  viewKept: (s, e) => (e.view ? { ...s, view: e.view } : s),
};

const CONNECTION = {
  retrying: (s) => ({ ...s, status: { text: "Connection lost: retrying…", kind: "warn" } }),
  reconnected: (s) => ({ ...s, status: { text: "", kind: "" } }),
};

export const TRANSITIONS = {
  loading: {
    ...ANSWERING,
    ...CONNECTION,
    ...KEEPING,
    start: (s) => ({ ...s, fetchSeq: s.fetchSeq + 1 }),
    loaded: (s, e) => fromServer(s, e.state),
    loadFailed: (s, e) => ({ ...s, phase: "error", error: { kind: "state", message: e.message } }),
    mounted(s, e) {
      if (e.seq !== s.mountSeq) return s;
      const next = { ...s, phase: "ready", viewer: e.viewer };
      if (!e.restored) return next;
      const { wanted, marks } = e.restored;
      return { ...next, answer: { marks }, restored: { wanted, placed: marks.length } };
    },
    mountFailed: (s, e) => (e.seq === s.mountSeq ? { ...s, phase: "error", error: { kind: "images", message: e.message } } : s),
  },
  ready: { ...ANSWERING, ...KEEPING },
  submitting: {
    ...CONNECTION,
    ...KEEPING,
    marks: ANSWERING.marks,
    draft: ANSWERING.draft,
    submitted: (s, e) => fromServer({ ...s, pendingKey: null }, e.state),
    // 4xx: nothing was stored and the reader changes the answer (a new key); 5xx or no answer at
    // all: the answer may be stored, so the next try keeps the key.
    rejected: (s, e) => ({ ...s, phase: "ready", pendingKey: e.keepKey ? s.pendingKey : null, message: e.message }),
  },
  error: {
    ...ANSWERING,
    ...KEEPING,
    retry(s) {
      const next = { ...s, phase: "loading", error: null, message: "" };
      return s.error?.kind === "images" ? { ...next, mountSeq: s.mountSeq + 1 } : { ...next, fetchSeq: s.fetchSeq + 1 };
    },
  },
  finished: {},
};

/**
 * The machine: `state` (read-only, frozen) and `dispatch(event)`, the only writer. Events sent
 * while one is being handled (by the page's effects) are queued and handled in order.
 * onTransition(previous, next, event) runs after every change.
 */
export function createMachine(initial, onTransition, transitions = TRANSITIONS) {
  let state = initial;
  const queue = [];
  let running = false;
  function dispatch(event) {
    queue.push(event);
    if (running) return;
    running = true;
    try {
      while (queue.length) {
        const next = queue.shift();
        const handler = transitions[state.phase]?.[next.type];
        const previous = state;
        const result = handler ? handler(previous, next) : previous;
        if (result === previous) continue;
        state = Object.freeze(result);
        try {
          onTransition(previous, state, next);
        } catch (error) {
          console.error(`after ${next.type}`, error);
        }
      }
    } finally {
      running = false;
    }
  }
  return {
    dispatch,
    get state() {
      return state;
    },
  };
}
