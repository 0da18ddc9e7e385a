// Celeriac dashboard: the one door to the gateway. Fetches JSON with the admin token kept in
// sessionStorage (sent as `Authorization: Bearer`), reports 401s so the page can ask for a
// token, and follows one task live: the SSE stream without a token (EventSource cannot send
// headers), or long polls of `GET /tasks/{id}?wait=2` with one.

const TOKEN_KEY = 'celeriac.token';
const TERMINAL = ['SUCCESS', 'FAILURE', 'REVOKED'];

export const isTerminal = (state) => TERMINAL.includes(state);

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** An answer that is not 2xx, with the gateway's error code and message. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

let unauthorized = () => {};

/** Registers what to do when the gateway answers 401 (show the token prompt). */
export function onUnauthorized(handler) {
  unauthorized = handler;
}

export async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  const bearer = token();
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => null);
  if (response.status === 401) unauthorized();
  if (!response.ok) {
    const error = data && data.error ? data.error : {};
    throw new ApiError(response.status, error.code || 'error', error.message || response.statusText);
  }
  return data;
}

export const get = (path) => api('GET', path);

/** A text answer (the Prometheus metrics), with the token, errors as for JSON. */
export async function getText(path) {
  const bearer = token();
  const response = await fetch(path, { headers: bearer ? { Authorization: `Bearer ${bearer}` } : {} });
  if (response.status === 401) unauthorized();
  if (!response.ok) throw new ApiError(response.status, 'error', response.statusText);
  return response.text();
}
export const post = (path, body) => api('POST', path, body === undefined ? {} : body);
export const del = (path) => api('DELETE', path);

/**
 * Follows a task until it ends: calls `onRecord(record)` with the full record whenever it
 * changes and `onProgress(progress)` for each progress report. Returns a function that stops.
 */
export function watchTask(id, onRecord, onProgress) {
  let stopped = false;
  const path = `/tasks/${encodeURIComponent(id)}`;
  const refresh = () => get(path).then((r) => { if (!stopped) onRecord(r); return r; });
  if (token() || typeof EventSource === 'undefined') {
    (async () => {
      let record = await refresh().catch(() => null);
      while (!stopped && !(record && isTerminal(record.state))) {
        record = await get(`${path}?wait=2`).catch(() => null);
        if (!record) await new Promise((done) => setTimeout(done, 2000));
        else if (!stopped) { onRecord(record); if (record.progress) onProgress(record.progress); }
      }
    })();
    return () => { stopped = true; };
  }
  const source = new EventSource(`${path}/events`);
  const stop = () => { stopped = true; source.close(); };
  source.addEventListener('snapshot', (e) => {
    const record = JSON.parse(e.data);
    onRecord(record);
    if (record.progress) onProgress(record.progress);
    if (isTerminal(record.state)) source.close();
  });
  source.addEventListener('progress', (e) => onProgress(JSON.parse(e.data).progress));
  source.addEventListener('state', (e) => {
    // The event carries the state alone: read the record for the rest (result, error).
    if (isTerminal(JSON.parse(e.data).state)) source.close();
    refresh().catch(() => {});
  });
  // The server ends the stream after the terminal state, which closes it here first; before
  // that, EventSource reconnects by itself with Last-Event-ID.
  return stop;
}
