// The helpers every page script shares (and the viewer bundle, which esbuild builds with its own
// copy of this file): building elements, JSON requests with Django's CSRF token and the server's
// error `detail`, polling, and showing an error in the page. Page scripts import them by name (el,
// fetchJSON, poll, showError…) from this module, its relative path in quotes: an import statement
// written out in this comment would be rewritten by the static storage (core/staticfiles.py) to this
// file's own hash, which changes with it, and collectstatic would never settle.

// A failure to reach the server or to read its answer (offline, connection reset, CORS, abort).
export class NetworkError extends Error {
  constructor(message) {
    super(message);
    this.name = "NetworkError";
  }
}

// A response outside 2xx: `status`, the server's `detail` (null when it sent none) and the parsed
// JSON body `data` (null when the body was not JSON: an HTML error page).
export class HttpError extends Error {
  constructor(status, statusText, data) {
    const detail = data && typeof data.detail === "string" ? data.detail : null;
    super(detail || `${status} ${statusText}`.trim());
    this.name = "HttpError";
    this.status = status;
    this.detail = detail;
    this.data = data;
  }
}

// <tag> with attributes and children. `class` sets className, `text` the text content; an attribute
// that is null, undefined or false is left out (true sets it empty: `hidden: true`). Children that
// are null, undefined or false are skipped, so `cond ? node : null` reads naturally.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}

// Django's CSRF token: its cookie, else a form's hidden input (CSRF_COOKIE_HTTPONLY sites).
export function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  if (match) return decodeURIComponent(match[1]);
  return document.querySelector("input[name=csrfmiddlewaretoken]")?.value || "";
}

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

async function send(url, { method = "GET", body, keepalive = false, cache = "default", accept }) {
  const upper = method.toUpperCase();
  const headers = { Accept: accept };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (!SAFE_METHODS.has(upper)) headers["X-CSRFToken"] = csrfToken();
  try {
    return await fetch(url, {
      method: upper,
      headers,
      credentials: "same-origin",
      cache,
      keepalive,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    throw new NetworkError(errorMessage(error));
  }
}

async function readJSON(response) {
  let text;
  try {
    text = await response.text();
  } catch (error) {
    throw new NetworkError(errorMessage(error)); // the connection dropped mid-body
  }
  try {
    return text ? JSON.parse(text) : null;
  } catch (_) {
    return undefined; // not JSON (an HTML error page)
  }
}

/**
 * One JSON request. Resolves with the parsed body (null for an empty one, e.g. 204). Throws an
 * HttpError (status, detail, data) for a non-2xx answer, a NetworkError when the server could not
 * be reached. Unsafe methods carry the CSRF header; `body` is sent as JSON. `cache` is fetch's
 * (pass "no-store" for state that must be fresh).
 */
export async function fetchJSON(url, { method = "GET", body, keepalive = false, cache = "default" } = {}) {
  const response = await send(url, { method, body, keepalive, cache, accept: "application/json" });
  const data = await readJSON(response);
  if (!response.ok) throw new HttpError(response.status, response.statusText, data ?? null);
  if (data === undefined) throw new Error(`${url} did not answer with JSON`);
  return data;
}

// GET raw bytes (an ArrayBuffer), with the same errors as fetchJSON.
export async function fetchBytes(url) {
  const response = await send(url, { accept: "application/octet-stream" });
  if (!response.ok) throw new HttpError(response.status, response.statusText, (await readJSON(response)) ?? null);
  try {
    return await response.arrayBuffer();
  } catch (error) {
    throw new NetworkError(errorMessage(error));
  }
}

// Worth trying again unchanged: the server was not reached, or a proxy / a restarting server answered.
export function isTransient(error) {
  return error instanceof NetworkError || (error instanceof HttpError && [502, 503, 504].includes(error.status));
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * GET `url` every `intervalMs` (the first time after `firstDelayMs`) and hand each answer to
 * `onData`, until `isDone(data)` is true or `stop()` is called. Network errors and 5xx answers
 * are blips: the next tick tries again. Any other error (a 4xx: gone, logged out) stops polling
 * and goes to `onError`. Returns {stop}.
 */
export function poll(url, { onData, isDone = () => false, onError, intervalMs = 1500, firstDelayMs = intervalMs } = {}) {
  let timer = null;
  let stopped = false;
  async function tick() {
    try {
      const data = await fetchJSON(url, { cache: "no-store" });
      if (stopped) return;
      onData?.(data);
      if (isDone(data)) stopped = true;
    } catch (error) {
      if (stopped) return;
      if (!(isTransient(error) || error.status >= 500)) {
        stopped = true;
        if (onError) onError(error);
        else console.error(`polling ${url} stopped`, error);
      }
    }
    if (!stopped) timer = setTimeout(tick, intervalMs);
  }
  timer = setTimeout(tick, firstDelayMs);
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

// Text for plotly, which renders labels, names and hover text as pseudo-HTML: `&`, `<` and `>`
// escaped, so a name chosen by whoever submitted a run shows as typed.
export function escapeHTML(text) {
  return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

// The text of anything thrown.
export function errorMessage(error) {
  return String(error && error.message ? error.message : error);
}

/**
 * Show `message` in `host` as the page's error box (role=alert): at its top, or instead of its
 * content with `replace: true`. One box per host: showing again updates it. `action` is an
 * optional {label, onClick, class} button (e.g. "Try again"). Returns the box.
 */
export function showError(host, message, { replace = false, action = null } = {}) {
  let box = replace ? null : host.querySelector(":scope > .error-box[data-error-box]");
  if (!box) box = el("div", { class: "error-box", role: "alert", "data-error-box": "" });
  box.replaceChildren(message);
  if (action) {
    const button = el("button", { type: "button", class: action.class, text: action.label });
    button.addEventListener("click", action.onClick);
    box.append(" ", button);
  }
  if (replace) host.replaceChildren(box);
  else if (box.parentNode !== host) host.prepend(box);
  return box;
}

// Remove the error box showError put in `host`, if any.
export function clearError(host) {
  host.querySelector(":scope > .error-box[data-error-box]")?.remove();
}
