// The atlas: a grid of every unit of a layer, each a small looping thumbnail, filling in as they
// finish; a click opens the unit. The server computes the atlas in the background (one ordinary
// visualisation a unit, at low priority, cached) and streams each unit as it finishes, so a second
// visit, or opening a unit, is immediate.

import * as api from './api.js';
import { LOGITS } from './choice.js';
import { ClipCard } from './clip-card.js';
import { className, randomBadge } from './model-info.js';
import { resultStrips } from './media.js';

/** Tiles at most (the server's limit too): a wide layer shows its first units. */
export const MAX_TILES = 256;

const STATUS_TEXT = { queued: ['waiting', 'queued'], running: ['computing…', 'busy'], done: ['', 'done'] };

export class Atlas extends EventTarget {
  constructor(root, timeline) {
    super();
    this.root = root;
    this.grid = root.querySelector('.atlas-grid');
    this.summary = root.querySelector('.atlas-summary');
    this.timeline = timeline;
    this.cards = [];
    this.controller = null;
    this.layerKey = null; // "model/layer" on show
  }

  get active() {
    return !this.root.hidden;
  }

  /**
   * Fill the grid for `body` ({model, layer, settings}) of a model description: every unit with
   * the same settings, in order. Dispatches an `open` event (detail: unit) when a tile is chosen.
   */
  async show(body, model) {
    this.close();
    const controller = (this.controller = new AbortController());
    const layer = model.layers.find((l) => l.id === body.layer);
    const count = Math.min(layer.units, MAX_TILES);
    this.layerKey = layerKey(body);
    this.root.hidden = false;
    this.root.querySelector('h2').replaceChildren(`Atlas of ${layer.id} `, ...[randomBadge(model)].filter(Boolean));
    const name = (unit) => (layer.id === LOGITS ? `#${unit} ${className(model, unit)}` : `#${unit}`);
    const tiles = Array.from({ length: count }, (_, unit) => this._tile(unit, name(unit)));
    const finished = new Set();
    const report = () => {
      const shown = count < layer.units ? ` (the first ${count} of ${layer.units})` : '';
      this.summary.textContent = `${finished.size} / ${count} units${shown}`;
    };
    const update = ({ unit, status, detail, media, warnings = [] }) => {
      const card = tiles[unit];
      if (!card || controller.signal.aborted) return;
      if (status === 'done') {
        card.show(resultStrips({ result: { media } }, model))
          .then(() => {
            card.setStatus(...(warnings.length ? ['⚠ shows little', 'warn'] : STATUS_TEXT.done));
            card.element.title = warnings.join(' ');
            card.element.classList.toggle('warned', warnings.length > 0);
          })
          .catch((error) => card.setStatus(`cannot show: ${error.message}`, 'error'));
      } else if (status === 'failed') {
        card.setStatus(`failed: ${detail}`, 'error');
      } else {
        card.setStatus(...STATUS_TEXT[status]);
      }
      if (status === 'done' || status === 'failed') finished.add(unit);
      report();
    };
    report();
    try {
      await api.runAtlas(body, { atlas: (state) => state.units.forEach(update), unit: update }, controller.signal);
    } catch (error) {
      if (error.name !== 'AbortError') this.summary.textContent = `The atlas failed: ${error.message}`;
    }
  }

  close() {
    this.controller?.abort();
    for (const card of this.cards) card.dispose();
    this.cards = [];
    this.root.hidden = true;
  }

  _tile(unit, title) {
    const card = new ClipCard(this.timeline, title);
    card.element.classList.add('tile');
    card.element.dataset.unit = String(unit);
    card.setStatus('waiting', 'queued');
    const open = card.addAction(document.createElement('button'));
    open.type = 'button';
    open.textContent = 'open';
    open.title = `Open unit ${unit}`;
    const choose = () => this.dispatchEvent(new CustomEvent('open', { detail: unit }));
    open.addEventListener('click', choose);
    card.element.querySelector('.card-clips').addEventListener('click', choose);
    this.cards.push(card);
    this.grid.append(card.element);
    return card;
  }
}

/** Which layer an atlas shows: "model/layer". */
export function layerKey({ model, layer }) {
  return `${model}/${layer}`;
}
