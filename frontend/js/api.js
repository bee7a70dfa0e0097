// The server's HTTP and WebSocket API (see CONTRACT.md): one function per call.

/** GET a JSON document; throws an Error carrying the server's `detail` on a non-2xx answer. */
export async function getJSON(path) {
  const response = await fetch(path, { headers: { Accept: 'application/json' } });
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = (await response.json()).detail ?? detail; } catch { /* not JSON */ }
    throw new Error(typeof detail === 'string' ? detail : JSON.stringify(detail));
  }
  return response.json();
}

export const health = () => getJSON('/api/health');
export const listModels = () => getJSON('/api/models');
export const describeModel = (id) => getJSON(`/api/models/${encodeURIComponent(id)}`);
export const modelPace = (id) => getJSON(`/api/models/${encodeURIComponent(id)}/pace`);
export const getVisualization = (id) => getJSON(`/api/visualizations/${encodeURIComponent(id)}`);
export const inputsUrl = (id) => `/api/visualizations/${encodeURIComponent(id)}/inputs.npz`;

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
      else if (message.type === 'error') finish(reject, new Error(message.detail ?? 'the server reported an error'));
      else onMessage(message);
    });
    socket.addEventListener('close', () => finish(reject, new Error('the connection to the server closed early')));
  });
}

/**
 * Run (or fetch from the cache) one visualisation over the live WebSocket.
 * Calls `on.accepted(id)`, `on.progress(msg)` for each progress message, then resolves with the
 * `done` object (see converse).
 */
export function runLive(body, on = {}, signal) {
  return converse('/api/visualizations/live', body, (message) => {
    if (message.type === 'accepted') on.accepted?.(message.id);
    else if (message.type === 'progress') on.progress?.(message);
  }, signal);
}

/**
 * Every unit of a layer ({model, layer, settings}), computed by the server in the background.
 * Calls `on.atlas(state)` with every unit's status, then `on.unit(unit)` as each one changes, and
 * resolves with the final state once every unit is done or failed (see converse).
 */
export function runAtlas(body, on = {}, signal) {
  return converse('/api/atlas/live', body, (message) => {
    if (message.type === 'atlas') on.atlas?.(message);
    else if (message.type === 'unit') on.unit?.(message);
  }, signal);
}
