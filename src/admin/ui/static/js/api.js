// The admin API client: same-origin fetches with the session cookie, the
// session's CSRF token on every POST, problem+json errors as ApiProblem.

let csrfToken = null;

/** An API refusal (RFC 9457 problem document). */
export class ApiProblem extends Error {
  constructor(status, problem) {
    super(problem?.detail ?? problem?.title ?? `HTTP ${status}`);
    this.name = 'ApiProblem';
    this.status = status;
    this.problem = problem ?? {};
    this.param = problem?.param;
  }
}

function toSignIn() {
  window.location.assign('/ui/sign-in');
}

async function call(method, path, body) {
  const headers = { accept: 'application/json' };
  if (method !== 'GET') {
    if (csrfToken) headers['x-csrf-token'] = csrfToken;
    if (body !== undefined) headers['content-type'] = 'application/json';
  }
  const res = await fetch(path, {
    method, headers, credentials: 'same-origin', cache: 'no-store',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 401) {
    toSignIn();
    throw new ApiProblem(401, { title: 'Signed out' });
  }
  if (res.status === 204) return null;
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!res.ok) throw new ApiProblem(res.status, data);
  return data;
}

/** GET /api/… with query parameters (empty values left out). */
export function get(path, params = {}) {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') qs.set(k, String(v));
  const q = qs.toString();
  return call('GET', q ? `${path}?${q}` : path);
}

/** POST /api/… with a JSON body. */
export function post(path, body) {
  return call('POST', path, body);
}

/** Loads the session (and its CSRF token); sends the browser to sign-in when there is none. */
export async function loadSession() {
  const s = await get('/api/session');
  csrfToken = s.csrfToken;
  return s;
}

/** Ends the session and goes to the sign-in page. */
export async function signOut() {
  try { await post('/api/session/sign-out'); } finally { toSignIn(); }
}
