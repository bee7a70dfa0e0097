// Compare: visualisations pinned side by side (any units, layers, models), each with its share link.
// The pinned ids live in the address (`pins=`) and in local storage, so a comparison can be shared.

import * as api from './api.js';
import { ClipCard } from './clip-card.js';
import { resultStrips } from './media.js';
import { formatNumber } from './result-view.js';

const STORAGE_KEY = 'stlens.pins';
const MAX_PINS = 12;

export class PinBoard extends EventTarget {
  /** @param describe  model id -> its description (GET /api/models/{id}), cached by the caller */
  constructor(root, timeline, describe) {
    super();
    this.root = root;
    this.grid = root.querySelector('.pin-grid');
    this.timeline = timeline;
    this.describe = describe;
    this.cards = new Map(); // id -> ClipCard
    root.querySelector('#pins-clear').addEventListener('click', () => {
      for (const id of this.ids()) this.remove(id);
    });
  }

  ids() {
    return [...this.cards.keys()];
  }

  /** Pins named in the address, else those of the last visit. */
  static remembered(params) {
    const listed = params.get('pins');
    if (listed !== null) return listed.split(',').filter(Boolean);
    try {
      return JSON.parse(localStorage.getItem(STORAGE_KEY) ?? '[]');
    } catch {
      return [];
    }
  }

  async add(id) {
    if (this.cards.has(id)) return;
    if (this.cards.size >= MAX_PINS) this.remove(this.ids()[0]);
    const card = new ClipCard(this.timeline, id.slice(0, 8));
    card.element.dataset.id = id;
    card.element.classList.add('wide');
    const link = card.addAction(document.createElement('a'));
    link.href = `/v/${encodeURIComponent(id)}`;
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
    this._changed();
  }

  async _fill(card, id, link) {
    card.setStatus('loading…', 'busy');
    try {
      const visualization = await api.getVisualization(id);
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
      localStorage.setItem(STORAGE_KEY, JSON.stringify(this.ids()));
    } catch { /* storage disabled: the address still holds the pins */ }
    this.dispatchEvent(new Event('change'));
  }
}
