// The reader workspace's state machine, without a browser:  node --test frontend/test/
import assert from "node:assert/strict";
import { test } from "node:test";

import { TRANSITIONS, createMachine, initialState, isComplete } from "../../static/js/reader_state.js";

const TURING = { design: "turing" };
const LIKERT = {
  design: "likert",
  scales: [
    { key: "realism", label: "Realism", anchors: ["1", "2", "3", "4", "5"] },
    { key: "quality", label: "Quality", anchors: ["1", "2", "3", "4", "5"] },
  ],
};
const item = (token, draft = null) => ({ token, images: [{ header_url: `/h/${token}/` }], draft });
const server = (done, total, next) => ({ done, total, finished: !next, item: next });
const viewer = { name: "viewer" };

// A machine that records each transition; returns it and the (prev, next, event) list.
function machineFor(config) {
  const seen = [];
  const machine = createMachine(initialState(config), (prev, next, event) => seen.push({ prev, next, event }));
  return { machine, seen };
}

// Through start, loaded and mounted: a shown item, ready to answer.
function readyOn(config, first = item("t1")) {
  const { machine, seen } = machineFor(config);
  machine.dispatch({ type: "start" });
  machine.dispatch({ type: "loaded", state: server(0, 3, first) });
  machine.dispatch({ type: "mounted", seq: machine.state.mountSeq, viewer, restored: null });
  return { machine, seen };
}

test("start asks for the study's state once, then a new item asks for a mount", () => {
  const { machine } = machineFor(TURING);
  assert.equal(machine.state.phase, "loading");
  machine.dispatch({ type: "start" });
  assert.equal(machine.state.fetchSeq, 1);
  machine.dispatch({ type: "loaded", state: server(1, 4, item("t1", { call: "real" })) });
  const s = machine.state;
  assert.deepEqual([s.phase, s.item.token, s.mountSeq, s.draft], ["loading", "t1", 1, "saved"]);
  assert.deepEqual(s.answer, { call: "real" });
  assert.deepEqual(s.progress, { done: 1, total: 4 });
  assert.equal(s.status.text, "Draft restored");
});

test("a mount of an item already left is ignored; the current one makes the item ready", () => {
  const { machine } = machineFor(TURING);
  machine.dispatch({ type: "start" });
  machine.dispatch({ type: "loaded", state: server(0, 2, item("t1")) });
  machine.dispatch({ type: "mounted", seq: machine.state.mountSeq - 1, viewer, restored: null });
  assert.equal(machine.state.phase, "loading");
  machine.dispatch({ type: "mounted", seq: machine.state.mountSeq, viewer, restored: null });
  assert.equal(machine.state.phase, "ready");
  assert.equal(machine.state.viewer, viewer);
});

test("an incomplete answer is not submitted but says what is missing", () => {
  const { machine } = readyOn(TURING);
  machine.dispatch({ type: "call", value: "real" });
  machine.dispatch({ type: "submit", key: "k1" });
  assert.equal(machine.state.phase, "ready");
  assert.match(machine.state.message, /confidence/);
  machine.dispatch({ type: "confidence", value: "3" });
  assert.equal(machine.state.message, "", "an edit clears the message");
  assert.equal(machine.state.draft, "pending");
  machine.dispatch({ type: "submit", key: "k1" });
  assert.deepEqual([machine.state.phase, machine.state.pendingKey], ["submitting", "k1"]);
});

test("a server error keeps the idempotency key for the next try; a 4xx drops it", () => {
  const { machine } = readyOn(TURING);
  machine.dispatch({ type: "call", value: "synthetic" });
  machine.dispatch({ type: "confidence", value: 5 });
  machine.dispatch({ type: "submit", key: "k1" });
  machine.dispatch({ type: "rejected", keepKey: true, message: "boom (500)." });
  assert.deepEqual([machine.state.phase, machine.state.pendingKey], ["ready", "k1"]);
  machine.dispatch({ type: "submit", key: "k2" });
  assert.equal(machine.state.pendingKey, "k1", "the retry sends the same key");
  machine.dispatch({ type: "rejected", keepKey: false, message: "Invalid answer." });
  assert.equal(machine.state.pendingKey, null);
  machine.dispatch({ type: "submit", key: "k3" });
  assert.equal(machine.state.pendingKey, "k3");
});

test("while submitting, answer edits and a second submit are ignored", () => {
  const { machine, seen } = readyOn(TURING);
  machine.dispatch({ type: "call", value: "real" });
  machine.dispatch({ type: "confidence", value: 2 });
  machine.dispatch({ type: "submit", key: "k1" });
  const count = seen.length;
  machine.dispatch({ type: "call", value: "synthetic" });
  machine.dispatch({ type: "submit", key: "k2" });
  assert.equal(seen.length, count);
  assert.equal(machine.state.answer.call, "real");
});

test("the answer's response moves to the next item, stays on the same one, or finishes", () => {
  const { machine } = readyOn(TURING);
  const answer = () => {
    machine.dispatch({ type: "call", value: "real" });
    machine.dispatch({ type: "confidence", value: 1 });
    machine.dispatch({ type: "submit", key: "k" });
  };
  answer();
  machine.dispatch({ type: "submitted", state: server(1, 3, item("t2")) });
  let s = machine.state;
  assert.deepEqual([s.phase, s.item.token, s.viewer, s.pendingKey, s.answer.call], ["loading", "t2", null, null, undefined]);
  machine.dispatch({ type: "mounted", seq: s.mountSeq, viewer, restored: null });
  answer();
  machine.dispatch({ type: "submitted", state: server(2, 3, item("t2")) }); // answered elsewhere: same item
  assert.deepEqual([machine.state.phase, machine.state.viewer], ["ready", viewer]);
  answer();
  const seq = machine.state.mountSeq;
  machine.dispatch({ type: "submitted", state: { done: 3, total: 3, finished: true, item: null } });
  s = machine.state;
  assert.deepEqual([s.phase, s.item, s.viewer, s.finished], ["finished", null, null, { complete: true }]);
  assert.equal(s.mountSeq, seq + 1, "a mount still running is dropped");
  assert.deepEqual(TRANSITIONS.finished, {});
});

test("a study state that fails to load, and images that fail to show, can be retried", () => {
  const { machine } = machineFor(TURING);
  machine.dispatch({ type: "start" });
  machine.dispatch({ type: "loadFailed", message: "You have been logged out." });
  assert.deepEqual([machine.state.phase, machine.state.error.kind], ["error", "state"]);
  machine.dispatch({ type: "retry" });
  assert.deepEqual([machine.state.phase, machine.state.fetchSeq, machine.state.error], ["loading", 2, null]);
  machine.dispatch({ type: "loaded", state: server(0, 1, item("t1")) });
  const seq = machine.state.mountSeq;
  machine.dispatch({ type: "mountFailed", seq, message: "502 Bad Gateway" });
  assert.deepEqual([machine.state.phase, machine.state.error.kind], ["error", "images"]);
  machine.dispatch({ type: "call", value: "real" }); // the question stays answerable
  assert.equal(machine.state.answer.call, "real");
  machine.dispatch({ type: "retry" });
  assert.deepEqual([machine.state.phase, machine.state.mountSeq, machine.state.fetchSeq], ["loading", seq + 1, 2]);
});

test("Likert: rating advances to the next scale and a draft resumes at the first open one", () => {
  const { machine } = readyOn(LIKERT, item("t1", { scores: { realism: 4 } }));
  assert.equal(machine.state.activeScale, 1);
  machine.dispatch({ type: "focusScale", index: -3 });
  assert.equal(machine.state.activeScale, 0);
  machine.dispatch({ type: "rate", scale: 0, value: 5, advance: true });
  assert.equal(machine.state.activeScale, 1);
  assert.equal(isComplete(machine.state), false);
  machine.dispatch({ type: "rate", scale: 1, value: 2, advance: true });
  assert.equal(machine.state.activeScale, 1, "the last scale stays active");
  assert.deepEqual(machine.state.answer, { scores: { realism: 5, quality: 2 } });
  assert.equal(isComplete(machine.state), true);
});

test("hallucination: none, tools and marks exclude each other", () => {
  const { machine } = readyOn({ design: "hallucination" });
  machine.dispatch({ type: "tool", value: "point" });
  assert.equal(machine.state.markTool, "point");
  machine.dispatch({ type: "none" });
  assert.deepEqual([machine.state.answer, machine.state.markTool], [{ none: true }, null]);
  machine.dispatch({ type: "marks", marks: [] }); // the viewer reports its marks cleared
  assert.deepEqual(machine.state.answer, { none: true });
  assert.equal(isComplete(machine.state), true);
  machine.dispatch({ type: "tool", value: "box" });
  assert.deepEqual([machine.state.answer, machine.state.markTool], [{ marks: [] }, "box"]);
  assert.equal(isComplete(machine.state), false);
  const mark = { type: "box", slice: 0, points: [[1, 1], [4, 4]] };
  machine.dispatch({ type: "marks", marks: [mark] });
  assert.deepEqual(machine.state.answer, { marks: [mark] });
  machine.dispatch({ type: "tool", value: "box" });
  assert.equal(machine.state.markTool, null, "the same tool again puts it away");
});

test("restored marks replace the draft's and say how many were placed", () => {
  const marks = [{ type: "point", slice: 0, points: [[1, 2]] }, { type: "point", slice: 9, points: [[3, 4]] }];
  const { machine } = machineFor({ design: "hallucination" });
  machine.dispatch({ type: "start" });
  machine.dispatch({ type: "loaded", state: server(0, 1, item("t1", { marks })) });
  assert.deepEqual(machine.state.answer, { marks });
  const placed = [marks[0]];
  machine.dispatch({ type: "mounted", seq: machine.state.mountSeq, viewer, restored: { wanted: 2, marks: placed } });
  assert.deepEqual(machine.state.answer, { marks: placed });
  assert.deepEqual(machine.state.restored, { wanted: 2, placed: 1 });
});

test("a draft's result for an item already left changes nothing", () => {
  const { machine, seen } = readyOn(TURING);
  const count = seen.length;
  machine.dispatch({ type: "draft", token: "old", status: "saved" });
  assert.equal(seen.length, count);
  machine.dispatch({ type: "draft", token: "t1", status: "error", message: "Not saved (400)." });
  assert.deepEqual([machine.state.draft, machine.state.status.kind, machine.state.message], ["error", "warn", "Not saved (400)."]);
});

test("events sent while a transition's effects run are handled after it, in order", () => {
  const order = [];
  let phaseAfterNestedDispatch = null;
  const machine = createMachine(initialState(TURING), (prev, next, event) => {
    order.push(event.type);
    if (event.type !== "start") return;
    machine.dispatch({ type: "loadFailed", message: "x" });
    phaseAfterNestedDispatch = machine.state.phase;
  });
  machine.dispatch({ type: "start" });
  assert.deepEqual(order, ["start", "loadFailed"]);
  assert.equal(phaseAfterNestedDispatch, "loading", "the nested event waited for the first to finish");
  assert.equal(machine.state.phase, "error");
  assert.ok(Object.isFrozen(machine.state));
});

test("probe studies: an answer with marks is complete once every mark is rated", () => {
  const { machine } = readyOn({ design: "hallucination", ratings: true });
  const point = { type: "point", slice: 0, points: [[3.5, 4.5]] };
  machine.dispatch({ type: "marks", marks: [point] });
  assert.equal(isComplete(machine.state), false);
  machine.dispatch({ type: "submit", key: "k1" });
  assert.match(machine.state.message, /rate each mark/);
  machine.dispatch({ type: "marks", marks: [{ ...point, rating: 4 }] });
  assert.equal(isComplete(machine.state), true);
  machine.dispatch({ type: "marks", marks: [{ ...point, rating: 4 }, point] });
  assert.equal(isComplete(machine.state), false);
  machine.dispatch({ type: "none" });
  assert.equal(isComplete(machine.state), true);
});
