// The atlas: a grid of every unit of a layer, each a small looping thumbnail, filling in as they
// finish; a click opens the unit. Until the server computes atlases itself (in batches, in the
// background), the page asks for the units one by one over the live socket; each result lands in
// the server's cache, so a second visit, or opening a unit, is immediate.

import * as api from './api.js';
import { LOGITS } from './choice.js';
import { ClipCard } from './clip-card.js';
import { resultStrips } from './media.js';

/** Tiles at most: a wide layer shows its first units. */
export const MAX_TILES = 256;

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
    this.root.querySelector('h2').textContent = `Atlas of ${layer.id}`;
    const name = (unit) => (layer.id === LOGITS ? `#${unit} ${model.labels[unit] ?? ''}` : `#${unit}`);
    const tiles = Array.from({ length: count }, (_, unit) => this._tile(unit, name(unit)));
    let finished = 0;
    const report = () => {
      const shown = count < layer.units ? ` (the first ${count} of ${layer.units})` : '';
      this.summary.textContent = `${finished} / ${count} units${shown}`;
    };
    report();
    for (const [unit, card] of tiles.entries()) {
      if (controller.signal.aborted) return;
      card.setStatus('computing…', 'busy');
      try {
        const done = await api.runLive({ ...body, unit }, {}, controller.signal);
        await card.show(resultStrips(done, model));
        card.setStatus('', 'done');
      } catch (error) {
        if (error.name === 'AbortError') return;
        card.setStatus(`failed: ${error.message}`, 'error');
      }
      finished += 1;
      report();
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
