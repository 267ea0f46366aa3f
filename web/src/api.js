// api.js: the one way the dashboard talks to /api/v1: same-origin fetch with the session
// cookie, the CSRF header on writes, and errors turned into ApiError (status, code, message).

let csrfToken = '';

/** Sets the CSRF token sent with every write (from the login answer or GET /me). */
export function setCsrf(t) { csrfToken = t || ''; }

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code || '';
  }
}

/** Builds a query string from an object, skipping empty values; arrays repeat the key. */
export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v === undefined || v === null || v === '') continue;
    if (Array.isArray(v)) v.forEach((x) => x !== '' && u.append(k, x));
    else u.set(k, String(v));
  }
  const s = u.toString();
  return s ? `?${s}` : '';
}

/** Calls the API; resolves to the parsed JSON (null for 204), rejects with ApiError. */
export async function api(path, { method = 'GET', body, query, signal } = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && csrfToken) headers['X-CSRF-Token'] = csrfToken;
  let res;
  try {
    res = await fetch(`/api/v1${path}${qs(query)}`, {
      method, headers, signal, credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', 'the server cannot be reached');
  }
  if (res.status === 204) return null;
  let data = null;
  const text = await res.text();
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (!res.ok) {
    const err = data && data.error;
    throw new ApiError(res.status, err && err.code, (err && err.message) || `HTTP ${res.status}`);
  }
  return data;
}

let unauthorizedHook = () => {};
/** Registers what happens when the session is gone (a 401 on any call): back to login. */
export function onUnauthorized(fn) { unauthorizedHook = fn; }

/** Tells the app the session is gone (the live stream was refused with 401). */
export function signalUnauthorized() { unauthorizedHook(); }

/** Wraps api() so a 401 also triggers the unauthorized hook. */
export async function call(path, opts) {
  try {
    return await api(path, opts);
  } catch (e) {
    if (e.status === 401) unauthorizedHook();
    throw e;
  }
}

/** Project-scoped path: /projects/{p}{rest}. */
export const pp = (p, rest = '') => `/projects/${encodeURIComponent(p)}${rest}`;
