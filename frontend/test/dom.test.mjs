// static/js/dom.js's requests and polling, with fetch and document stubbed:  node --test frontend/test/
import assert from "node:assert/strict";
import { afterEach, beforeEach, test } from "node:test";

import { HttpError, NetworkError, fetchJSON, isTransient, poll } from "../../static/js/dom.js";

let calls;

// fetch answering from `answers` in turn: a Response, or an Error to throw.
function stubFetch(...answers) {
  globalThis.fetch = async (url, init) => {
    calls.push({ url, init });
    const answer = answers.length > 1 ? answers.shift() : answers[0];
    if (answer instanceof Error) throw answer;
    return answer.clone();
  };
}

const json = (status, body) =>
  new Response(body === undefined ? null : JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });

beforeEach(() => {
  calls = [];
  globalThis.document = { cookie: "sessionid=x; csrftoken=tok%2B1", querySelector: () => null };
});
afterEach(() => {
  delete globalThis.fetch;
  delete globalThis.document;
});

test("fetchJSON sends JSON with the CSRF token for unsafe methods only", async () => {
  stubFetch(json(200, { ok: 1 }));
  assert.deepEqual(await fetchJSON("/a/"), { ok: 1 });
  assert.equal(calls[0].init.method, "GET");
  assert.equal(calls[0].init.headers["X-CSRFToken"], undefined);
  assert.equal(calls[0].init.credentials, "same-origin");
  await fetchJSON("/b/", { method: "post", body: { x: [1] }, keepalive: true });
  const { init } = calls[1];
  assert.deepEqual([init.method, init.headers["X-CSRFToken"], init.body, init.keepalive], ["POST", "tok+1", '{"x":[1]}', true]);
  assert.equal(init.headers["Content-Type"], "application/json");
});

test("fetchJSON resolves an empty answer (204) to null", async () => {
  stubFetch(new Response(null, { status: 204 }));
  assert.equal(await fetchJSON("/draft/", { method: "POST", body: {} }), null);
});

test("a non-2xx answer throws an HttpError with the server's detail, status and body", async () => {
  stubFetch(json(409, { detail: "Answered under another key.", state: { done: 2 } }));
  const error = await fetchJSON("/answers/", { method: "POST", body: {} }).catch((e) => e);
  assert.ok(error instanceof HttpError);
  assert.deepEqual([error.status, error.detail, error.message, error.data.state], [409, "Answered under another key.", "Answered under another key.", { done: 2 }]);
  assert.equal(isTransient(error), false);
});

test("an HTML error page gives an HttpError without a detail", async () => {
  stubFetch(new Response("<h1>Bad Gateway</h1>", { status: 502, statusText: "Bad Gateway" }));
  const error = await fetchJSON("/x/").catch((e) => e);
  assert.deepEqual([error.status, error.detail, error.message, error.data], [502, null, "502 Bad Gateway", null]);
  assert.equal(isTransient(error), true);
});

test("a server that cannot be reached gives a NetworkError", async () => {
  stubFetch(new TypeError("Failed to fetch"));
  const error = await fetchJSON("/x/").catch((e) => e);
  assert.ok(error instanceof NetworkError);
  assert.equal(error.message, "Failed to fetch");
  assert.equal(isTransient(error), true);
});

test("a 2xx answer that is not JSON is an error, not data", async () => {
  stubFetch(new Response("<html>login</html>", { status: 200 }));
  await assert.rejects(fetchJSON("/x/"), /did not answer with JSON/);
});

// Resolves when poll has stopped of itself (isDone or onError), with what it saw.
function pollUntilStopped(url, isDone) {
  return new Promise((resolve) => {
    const seen = [];
    const done = (data) => isDone(data) && setTimeout(() => resolve({ seen }), 30);
    poll(url, {
      intervalMs: 1,
      firstDelayMs: 0,
      onData: (data) => {
        seen.push(data);
        done(data);
      },
      isDone,
      onError: (error) => setTimeout(() => resolve({ seen, error }), 30),
    });
  });
}

test("poll rides out network errors and 5xx, and stops once the data says it is done", { timeout: 5000 }, async () => {
  stubFetch(json(200, { n: 1, is_final: false }), new TypeError("offline"), json(503, {}), json(200, { n: 2, is_final: true }),
    json(200, { n: 3, is_final: true }));
  const { seen, error } = await pollUntilStopped("/api/runs/1/", (data) => data.is_final);
  assert.deepEqual(seen.map((d) => d.n), [1, 2]);
  assert.equal(error, undefined);
  assert.equal(calls.length, 4, "no request after the final answer");
  assert.equal(calls[0].init.cache, "no-store");
});

test("poll stops on a 4xx and hands the error over", { timeout: 5000 }, async () => {
  stubFetch(json(200, { is_final: false }), json(404, { detail: "Not found." }), json(200, { is_final: false }));
  const { seen, error } = await pollUntilStopped("/api/runs/1/evaluation/", (data) => data.is_final);
  assert.equal(seen.length, 1);
  assert.deepEqual([error.status, error.detail], [404, "Not found."]);
  assert.equal(calls.length, 2);
});
