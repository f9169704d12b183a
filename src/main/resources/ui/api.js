// The one way the dashboard talks to Ballast: the REST API of the node that served the page
// (relative URLs, same origin). A token pasted into "Sign in" is sent as a bearer token.

const TOKEN_KEY = 'ballast.apiToken';

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || '';
}

export function setToken(t) {
  if (t) sessionStorage.setItem(TOKEN_KEY, t);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** The API answered with an error: its code and message, as docs/api.md describes them. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
  get needsSignIn() {
    return this.status === 401 || this.status === 403;
  }
}

/** The API did not answer at all (node down, network gone). */
export class Unreachable extends Error {}

const listeners = new Set();
/** Called with (ok, error) after every request: the page's connection banner follows it. */
export function onHealth(fn) {
  listeners.add(fn);
}
function report(ok, err) {
  for (const fn of listeners) fn(ok, err);
}

const TIMEOUT_MS = 15000;

export async function call(method, path, body) {
  const headers = {Accept: 'application/json'};
  const t = token();
  if (t) headers.Authorization = 'Bearer ' + t;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), TIMEOUT_MS);
  let res;
  try {
    res = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      signal: ctl.signal, cache: 'no-store', credentials: 'same-origin',
    });
  } catch (e) {
    const err = new Unreachable(e.name === 'AbortError' ? `no answer within ${TIMEOUT_MS / 1000} s` : String(e.message || e));
    report(false, err);
    throw err;
  } finally {
    clearTimeout(timer);
  }
  const text = await res.text();
  let json = null;
  if (text) {
    try { json = JSON.parse(text); } catch { json = null; }
  }
  if (!res.ok) {
    const e = json && json.error;
    const err = new ApiError(res.status, e ? e.code : 'HTTP_' + res.status,
      e ? e.message : `HTTP ${res.status} ${res.statusText}`);
    report(true, err);
    throw err;
  }
  report(true, null);
  return json;
}

export const get = (path) => call('GET', path);
export const post = (path, body) => call('POST', path, body);
export const del = (path) => call('DELETE', path);

/** A path segment: names are validated by the API, but never trusted to be URL-safe here. */
export const seg = (s) => encodeURIComponent(s);
