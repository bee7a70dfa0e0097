// The server's HTTP and WebSocket API (see CONTRACT.md and docs/api.md): every URL the pages ask the
// server for is written here, one function per call, and every error the server sends becomes an
// Error whose message is its `detail`, in one format.

/** The message of an error answer's `detail` (a sentence, or FastAPI's list of field errors). */
export function errorMessage(detail, fallback = 'the server reported an error') {
  if (detail === undefined || detail === null || detail === '') return fallback;
  if (typeof detail === 'string') return detail;
  if (Array.isArray(detail) && detail.length && detail.every((error) => typeof error?.msg === 'string')) {
    return detail.map(fieldError).join('; ');
  }
  return JSON.stringify(detail);
}

/** One of FastAPI's field errors as "start.example: Input should be ...": the request body's own name, and
 * the kind a tagged union repeats (start, example, example), left out of the path. */
function fieldError({ loc = [], msg }) {
  const path = loc.filter((part, i) => part !== 'body' && part !== loc[i - 1]);
  return path.length ? `${path.join('.')}: ${msg}` : msg;
}

/** Read a response as JSON; throws an Error carrying the server's `detail` on a non-2xx answer. */
async function answer(response) {
  if (!response.ok) {
    let detail;
    try { detail = (await response.json()).detail; } catch { /* not JSON */ }
    throw new Error(errorMessage(detail, response.statusText));
  }
  return response.json();
}

/** GET a JSON document: a path of the API, or a URL the server handed out (e.g. a result's medium). */
export async function getJSON(path) {
  return answer(await fetch(path, { headers: { Accept: 'application/json' } }));
}

/** Send `body` as JSON with `method` (POST by default) and read the JSON answer (see answer). */
async function sendJSON(path, body, method = 'POST') {
  const headers = { Accept: 'application/json', ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) };
  return answer(await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) }));
}

const segment = encodeURIComponent;
const query = (params) => new URLSearchParams(Object.entries(params).map(([key, value]) => [key, String(value)]));

export const health = () => getJSON('/api/health');
export const listModels = () => getJSON('/api/models');
export const describeModel = (id) => getJSON(`/api/models/${segment(id)}`);
export const getVisualization = (id) => getJSON(`/api/visualizations/${segment(id)}`);
/**
 * About how long some work takes on this server before it starts ({model, layer, settings, runs?,
 * atlas?, unit?}): {seconds, runs, seconds_per_step, source: 'measured'|'estimated', heavy, heavy_s,
 * stored: how many of the runs are stored here already (they cost nothing)}.
 */
export const estimateWork = (body) => sendJSON('/api/estimates', body);
/** Cancel an atlas this browser started; another's is refused with the server's `detail`. */
export const cancelAtlas = (id) => sendJSON(`/api/atlas/${segment(id)}`, undefined, 'DELETE');
export const inputsUrl = (id) => `/api/visualizations/${segment(id)}/inputs.npz`;
/** The server's OpenAPI document (the settings panel is built from its schemas). */
export const openApi = () => getJSON('/openapi.json');
/** A presentation tour, a static file: {title, stops}. */
export const getTour = (name) => getJSON(`/static/tours/${segment(name)}.json`);
/** A unit's top dataset clips (models of the synthetic world). */
export const unitExamples = (model, layer, unit, k) => getJSON(`/api/examples?${query({ model, layer, unit, k })}`);
export const explainSamples = () => getJSON('/api/explain/samples');
/**
 * Explain a video: `form` holds model, layer?, target?, and a file or a sample name. The server streams
 * JSON lines (docs/insights.md): `onProgress({stage, done, total})` hears of the flow's estimation
 * (TV-L1 takes seconds); resolves with the explanation.
 */
export async function explain(form, onProgress = () => {}) {
  const response = await fetch('/api/explain', { method: 'POST', body: form, headers: { Accept: 'application/x-ndjson' } });
  if (!response.ok || !response.headers.get('content-type')?.includes('ndjson')) return answer(response);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error('the connection to the server closed early');
    buffered += value;
    let end;
    while ((end = buffered.indexOf('\n')) >= 0) {
      const message = JSON.parse(buffered.slice(0, end));
      buffered = buffered.slice(end + 1);
      if (message.type === 'done') return message.explanation;
      if (message.type === 'error') throw new Error(errorMessage(message.detail));
      onProgress(message);
    }
  }
}
export const insights = () => getJSON('/api/insights');

/**
 * Send `body` as the one message of a WebSocket conversation at `path` (see CONTRACT.md); every
 * message but the last goes to `onMessage`. Resolves with the `done` message; rejects with the
 * server's `detail` on an `error` message or a dropped socket. `signal` (an AbortSignal) closes the
 * socket and rejects with an AbortError.
 */
function converse(path, body, onMessage, signal) {
  return new Promise((resolve, reject) => {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const socket = new WebSocket(`${scheme}//${location.host}${path}`);
    let settled = false;
    const finish = (fn, value) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', abort);
      // Closing a socket that is still connecting logs a browser error: it closes once open instead.
      if (socket.readyState === WebSocket.OPEN) socket.close();
      fn(value);
    };
    const abort = () => finish(reject, new DOMException('cancelled', 'AbortError'));
    if (signal?.aborted) return abort();
    signal?.addEventListener('abort', abort);

    socket.addEventListener('open', () => (settled ? socket.close() : socket.send(JSON.stringify(body))));
    socket.addEventListener('message', (event) => {
      const message = JSON.parse(event.data);
      if (message.type === 'done') finish(resolve, message);
      else if (message.type === 'error') finish(reject, new Error(errorMessage(message.detail)));
      else onMessage(message);
    });
    socket.addEventListener('close', () => finish(reject, new Error('the connection to the server closed early')));
  });
}

/**
 * Run (or fetch from the cache) one visualisation over the live WebSocket.
 * Calls `on.accepted(id)`, `on.queued({position, eta_s})` while it waits its turn (position: runs
 * ahead of it, 0: next), `on.progress(msg)` for each progress message, then resolves with the
 * `done` object (see converse). `priority` 'background': a prefetch nobody waits for yet, which the
 * server runs after every interactive request.
 */
export function runLive(body, on = {}, signal, priority = 'interactive') {
  const path = `/api/visualizations/live${priority === 'background' ? '?priority=background' : ''}`;
  return converse(path, body, (message) => {
    if (message.type === 'accepted') on.accepted?.(message.id);
    else if (message.type === 'queued') on.queued?.(message);
    else if (message.type === 'progress') on.progress?.(message);
  }, signal);
}

/**
 * Every unit of a layer ({model, layer, settings, run_on?}), computed by the server in the background
 * (it stops a few seconds after nobody watches it, unless `run_on`).
 * Calls `on.atlas(state)` with every unit's status, then `on.unit(unit)` as each one changes, and
 * resolves with the final state once every unit is done or failed (see converse).
 */
export function runAtlas(body, on = {}, signal) {
  return converse('/api/atlas/live', body, (message) => {
    if (message.type === 'atlas') on.atlas?.(message);
    else if (message.type === 'unit') on.unit?.(message);
  }, signal);
}
