// Compare: visualisations pinned side by side (any units, layers, models), each with its share link.
// The pins live in the address (`pins=`) and in local storage, so a comparison can be shared: each pin
// is `id.request` (the request as base64url JSON), so a server that never saw it recomputes it.

import * as api from './api.js';
import { ClipCard } from './clip-card.js';
import { resultStrips } from './media.js';
import { formatNumber, queuedText } from './format.js';
import { visualizationAddress } from './urlstate.js';

const STORAGE_KEY = 'stlens.pins';
const MAX_PINS = 12;

const toBase64url = (text) => btoa(String.fromCharCode(...new TextEncoder().encode(text)))
  .replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
const fromBase64url = (packed) => new TextDecoder().decode(
  Uint8Array.from(atob(packed.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0)));

/** A pin as the address holds it: `id`, or `id.request` when its request is known. */
export function encodePin(id, request) {
  return request ? `${id}.${toBase64url(JSON.stringify(request))}` : id;
}

/** `{id, request}` of an address's pin (request null when it carries none or cannot be read). */
export function decodePin(token) {
  const [id, packed] = token.split('.', 2);
  try {
    return { id, request: packed ? JSON.parse(fromBase64url(packed)) : null };
  } catch {
    return { id, request: null };
  }
}

export class PinBoard extends EventTarget {
  /** @param describe  model id -> its description (GET /api/models/{id}), cached by the caller */
  constructor(root, timeline, describe) {
    super();
    this.root = root;
    this.grid = root.querySelector('.pin-grid');
    this.timeline = timeline;
    this.describe = describe;
    this.cards = new Map(); // id -> ClipCard
    this.requests = new Map(); // id -> its request, once known
    root.querySelector('.pins-clear').addEventListener('click', () => {
      for (const id of this.ids()) this.remove(id);
    });
  }

  ids() {
    return [...this.cards.keys()];
  }

  /** The pins as the address and local storage hold them. */
  tokens() {
    return this.ids().map((id) => encodePin(id, this.requests.get(id)));
  }

  /** Pins named in the address, else those of the last visit (as tokens). */
  static remembered(params) {
    const listed = params.get('pins');
    if (listed !== null) return listed.split(',').filter(Boolean);
    try {
      return JSON.parse(localStorage.getItem(STORAGE_KEY) ?? '[]');
    } catch {
      return [];
    }
  }

  /** Pin a visualisation: an id, or an address's token (`id.request`). */
  async add(token) {
    const { id, request } = decodePin(token);
    if (request) this.requests.set(id, request);
    if (this.cards.has(id)) return;
    if (this.cards.size >= MAX_PINS) this.remove(this.ids()[0]);
    const card = new ClipCard(this.timeline, id.slice(0, 8));
    card.element.dataset.id = id;
    card.element.classList.add('wide');
    const link = card.addAction(document.createElement('a'));
    link.href = visualizationAddress(id);
    link.textContent = 'open';
    link.title = 'Open (share link)';
    const unpin = card.addAction(document.createElement('button'));
    unpin.type = 'button';
    unpin.textContent = '✕';
    unpin.title = 'Unpin';
    unpin.setAttribute('aria-label', 'Unpin');
    unpin.addEventListener('click', () => this.remove(id));
    this.cards.set(id, card);
    this.grid.append(card.element);
    this._changed();
    await this._fill(card, id, link);
  }

  remove(id) {
    this.cards.get(id)?.dispose();
    this.cards.delete(id);
    this.requests.delete(id);
    this._changed();
  }

  /** The pin's visualisation: from its request when known (cached or computed here), else by id. */
  async _visualization(card, id) {
    const request = this.requests.get(id);
    if (!request) return api.getVisualization(id);
    const visualization = await api.runLive(request, {
      queued: (message) => card.setStatus(queuedText(message, true), 'queued'),
      progress: (message) => card.setStatus(`computing… step ${message.step} / ${message.steps}`, 'busy'),
    });
    if (visualization.id !== id) throw new Error("this server's model weights differ from the pinned ones");
    return visualization;
  }

  async _fill(card, id, link) {
    card.setStatus('loading…', 'busy');
    try {
      const visualization = await this._visualization(card, id);
      if (!this.requests.has(id) && this.cards.has(id)) {
        this.requests.set(id, visualization.request);
        this._changed(); // the address now carries the request too
      }
      link.href = visualization.share_path;
      const { model, layer, unit } = visualization.request;
      card.title.textContent = `${layer} #${unit}`;
      card.element.title = `${model} · ${layer} · unit ${unit}`;
      if (visualization.status !== 'done') {
        card.setStatus(`${visualization.status}: open it to compute`, 'queued');
        return;
      }
      await card.show(resultStrips(visualization, await this.describe(model)));
      card.setStatus(`${model} · objective ${formatNumber(visualization.result.objective)}`, 'done');
    } catch (error) {
      card.setStatus(`not available: ${error.message}`, 'error');
    }
  }

  _changed() {
    this.root.hidden = this.cards.size === 0;
    try {
      localStorage.setItem(STORAGE_KEY, JSON.stringify(this.tokens()));
    } catch { /* storage disabled: the address still holds the pins */ }
    this.dispatchEvent(new Event('change'));
  }
}
