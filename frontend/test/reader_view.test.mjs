// The view kept from item to item and the preset keys, without a browser:  node --test frontend/test/
import assert from "node:assert/strict";
import { test } from "node:test";

import { IGNORED_REPEAT, keyAction, presetKey } from "../../static/js/reader_keys.js";
import { TRANSITIONS, initialState } from "../../static/js/reader_state.js";
import { keptView, viewFor } from "../../static/js/reader_view.js";

const PRESETS = [
  { name: "1–99 %", lower: 0.1, upper: 0.9 },
  { name: "5–95 %", lower: 0.2, upper: 0.8 },
  { name: "Full range", lower: 0, upper: 1 },
];
const HEADER = { presets: [{ lower: 10, upper: 90 }, { lower: 20, upper: 80 }, { lower: 0, upper: 100 }], range: { min: 0, max: 100 } };

test("a preset's window is kept as its index, a dragged one as its values", () => {
  assert.deepEqual(keptView({ lower: 0.2, upper: 0.8 }, PRESETS, 2, [3, -4]), { window: { preset: 1 }, zoom: 2, pan: [3, -4] });
  assert.deepEqual(keptView({ lower: 0.25, upper: 0.7 }, PRESETS, 1, [0, 0]), {
    window: { lower: 0.25, upper: 0.7 },
    zoom: 1,
    pan: [0, 0],
  });
  assert.equal(keptView({ lower: 1, upper: 1 }, PRESETS, 1, [0, 0]), null); // no window to keep
  assert.deepEqual(keptView({ lower: 0, upper: 1 }, PRESETS, NaN, null), { window: { preset: 2 }, zoom: 1, pan: [0, 0] });
});

test("the next item gets its own preset, the kept values, or its first preset when they miss its data", () => {
  const byPreset = viewFor({ window: { preset: 1 }, zoom: 2, pan: [1, 2] }, HEADER);
  assert.deepEqual(byPreset, { preset: 1, voi: null, zoom: 2, pan: [1, 2] });
  const byValues = viewFor({ window: { lower: 30, upper: 60 }, zoom: 1.5, pan: [0, 0] }, HEADER);
  assert.deepEqual(byValues, { preset: null, voi: { lower: 30, upper: 60 }, zoom: 1.5, pan: [0, 0] });
  const outside = viewFor({ window: { lower: 200, upper: 400 }, zoom: 1, pan: [0, 0] }, HEADER);
  assert.deepEqual(outside, { preset: 0, voi: null, zoom: 1, pan: [0, 0] });
  const fewer = viewFor({ window: { preset: 2 }, zoom: 1, pan: [0, 0] }, { presets: [{ lower: 0, upper: 1 }] });
  assert.equal(fewer.preset, 0);
  assert.equal(viewFor(null, HEADER), null);
});

const key = (k, extra = {}) => ({ key: k, code: "", shiftKey: false, repeat: false, ...extra });

test("Shift+digits are window presets in every design and never answers", () => {
  for (const design of ["turing", "likert", "pairwise", "hallucination"]) {
    const s = initialState({ design, scales: [{ key: "q", label: "Q", anchors: ["a", "b", "c", "d", "e"] }], allowNoPreference: true });
    for (const [k, code, index] of [["!", "Digit1", 0], ["@", "Digit2", 1], ["#", "Digit3", 2], ["2", "Digit2", 1]]) {
      // "2" with Shift on Digit2: a layout (AZERTY) whose shifted top row gives digits
      assert.deepEqual(keyAction(key(k, { code, shiftKey: true }), s), { command: "preset", index }, `${design} ${code}`);
    }
    assert.equal(keyAction(key("!", { code: "Digit1", shiftKey: true, repeat: true }), s), IGNORED_REPEAT);
  }
  const turing = initialState({ design: "turing" });
  assert.deepEqual(keyAction(key("3", { code: "Digit3" }), turing), { type: "confidence", value: 3 }); // plain digit answers
  assert.deepEqual(keyAction(key("3", { code: "Numpad3", shiftKey: true }), turing), { type: "confidence", value: 3 });
  assert.equal(presetKey(key("!", { code: "Digit1" })), null);
  assert.equal(presetKey(key("0", { code: "Digit0", shiftKey: true })), null);
});

test("the kept view survives submitting and the next item, and is kept in every phase but finished", () => {
  const view = { window: { preset: 2 }, zoom: 1.5, pan: [0, 0] };
  for (const phase of ["loading", "ready", "submitting", "error"]) {
    const s = { ...initialState({ design: "turing" }), phase };
    assert.deepEqual(TRANSITIONS[phase].viewKept(s, { view }).view, view, phase);
    assert.equal(TRANSITIONS[phase].viewKept(s, { view: null }), s); // nothing read: the last view stays
  }
  assert.equal(TRANSITIONS.finished.viewKept, undefined);
  const s = { ...initialState({ design: "turing" }), phase: "submitting", item: { token: "a", images: [] }, view };
  const next = TRANSITIONS.submitting.submitted(s, { state: { done: 1, total: 2, finished: false, item: { token: "b", images: [], draft: null } } });
  assert.equal(next.phase, "loading");
  assert.deepEqual(next.view, view);
});

test("the server's next item is held for prefetching and dropped at the end", () => {
  const s = { ...initialState({ design: "turing" }), phase: "submitting", item: { token: "a", images: [] }, viewer: {} };
  const next = { token: "c", images: [] };
  const loaded = TRANSITIONS.submitting.submitted(s, {
    state: { done: 1, total: 3, finished: false, item: { token: "b", images: [], draft: null }, next },
  });
  assert.deepEqual(loaded.next, next);
  assert.equal(loaded.item.token, "b");
  const same = TRANSITIONS.loading.loaded({ ...loaded, viewer: {} }, { state: { done: 1, total: 3, finished: false, item: loaded.item } });
  assert.equal(same.next, null); // the server named none this time
  const done = TRANSITIONS.submitting.submitted({ ...loaded, phase: "submitting" }, { state: { done: 3, total: 3, finished: true, item: null } });
  assert.equal(done.phase, "finished");
  assert.equal(done.next, null);
});

test("probe studies: digits 1–5 rate the current mark, presets stay on Shift, other studies ignore digits", () => {
  const probe = initialState({ design: "hallucination", ratings: true });
  for (const digit of [1, 2, 3, 4, 5]) {
    assert.deepEqual(keyAction(key(String(digit), { code: `Digit${digit}` }), probe), { command: "rateMark", value: digit });
  }
  assert.equal(keyAction(key("3", { code: "Digit3", repeat: true }), probe), IGNORED_REPEAT);
  assert.deepEqual(keyAction(key("!", { code: "Digit1", shiftKey: true }), probe), { command: "preset", index: 0 });
  assert.deepEqual(keyAction(key("p"), probe), { type: "tool", value: "point" });
  assert.deepEqual(keyAction(key("n"), probe), { type: "none" });
  assert.equal(keyAction(key("6", { code: "Digit6" }), probe), null);
  const plain = initialState({ design: "hallucination" });
  assert.equal(keyAction(key("3", { code: "Digit3" }), plain), null, "no ratings: the digit is not ours");
});
