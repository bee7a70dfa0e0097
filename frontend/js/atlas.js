// The atlas: a grid of every unit of a layer, each a small looping thumbnail, filling in as they
// finish; a click opens the unit. The server computes the atlas in the background (one ordinary
// visualisation a unit, after interactive work, cached) and streams each unit as it finishes, so a
// second visit, or opening a unit, is immediate. While it runs the view says about how long it has
// left, whether it stops when nobody watches it or runs on, and offers its starter to cancel it.

import * as api from './api.js';
import { LOGITS } from './choice.js';
import { ClipCard } from './clip-card.js';
import { duration } from './format.js';
import { className, randomBadge } from './model-info.js';
import { resultStrips } from './media.js';

/** Tiles at most (the server's limit too): a wide layer shows its first units. */
export const MAX_TILES = 256;
const TICK_MS = 1000; // the time left counts down this often between the server's estimates

const STATUS_TEXT = { queued: ['queued', 'queued'], running: ['computing…', 'busy'], done: ['', 'done'] };

/** A tile's status line and state: a unit waiting its turn says its place where the server knows it. */
export function unitStatusText({ status, position }) {
  if (status === 'queued' && Number.isInteger(position)) return [position ? `queued: ${position} ahead` : 'queued: next', 'queued'];
  return STATUS_TEXT[status];
}

/** A unit the atlas's cancelling failed (the server's detail says "cancelled: ..."). */
const isCancelled = ({ status, detail }) => status === 'failed' && /^cancelled\b/.test(detail ?? '');

/** The line under the atlas's heading: what happens to it when this page goes away, and who may cancel it. */
export function atlasNote({ status, run_on: runOn, cancelled, yours }, runOnAsked) {
  if (cancelled) return 'Cancelled: the units it finished stay stored, the others were not computed.';
  if (status !== 'running') return '';
  if (!yours) {
    const when = runOn ? 'It keeps running when everyone leaves' : 'It stops a few seconds after nobody watches it';
    return `${when}. Another browser started it: only that one can cancel it.`;
  }
  if (runOn) return `It keeps running when you leave${runOnAsked ? '' : ' (someone asked it to)'}; Cancel atlas stops it.`;
  return 'It stops a few seconds after nobody watches it: tick "keep the atlas running when I leave" to let it finish.';
}

export class Atlas extends EventTarget {
  constructor(root, timeline) {
    super();
    this.root = root;
    this.grid = root.querySelector('.atlas-grid');
    this.summary = root.querySelector('.atlas-summary');
    this.eta = root.querySelector('.atlas-eta');
    this.note = root.querySelector('.atlas-note');
    this.cancelButton = root.querySelector('#atlas-cancel');
    this.cancelButton.addEventListener('click', () => this.cancel());
    this.timeline = timeline;
    this.cards = [];
    this.controller = null;
    this.layerKey = null; // "model/layer" on show
    this.body = null; // the request shown (JSON), while shown
    this.state = null; // the server's latest state of the atlas (id, status, eta_s, run_on, cancelled)
    this.left = null; // {seconds, at}: the time left at the server's latest estimate, counted down
    this.ticking = null;
  }

  get active() {
    return !this.root.hidden;
  }

  /** True while the atlas of exactly `body` ({model, layer, settings}) is computing on screen. */
  runs(body) {
    return this.active && this.state?.status === 'running' && this.body === requestKey(body);
  }

  /**
   * Fill the grid for `body` ({model, layer, settings, run_on}) of a model description: every unit
   * with the same settings, in order. Dispatches an `open` event (detail: unit) when a tile is chosen.
   */
  async show(body, model) {
    this.close();
    const controller = (this.controller = new AbortController());
    const layer = model.layers.find((l) => l.id === body.layer);
    const count = Math.min(layer.units, MAX_TILES);
    this.layerKey = layerKey(body);
    this.body = requestKey(body);
    this.root.hidden = false;
    this.root.querySelector('h2').replaceChildren(`Atlas of ${layer.id} `, ...[randomBadge(model)].filter(Boolean));
    const name = (unit) => (layer.id === LOGITS ? `#${unit} ${className(model, unit)}` : `#${unit}`);
    const tiles = Array.from({ length: count }, (_, unit) => this._tile(unit, name(unit)));
    const settled = new Set();
    const finished = new Set(); // done, not failed
    const report = () => {
      const shown = count < layer.units ? ` (the first ${count} of ${layer.units})` : '';
      this.summary.textContent = this.state?.cancelled
        ? `Cancelled with ${finished.size} of ${count} units finished${shown}`
        : `${settled.size} / ${count} units${shown}`;
    };
    const update = (unitState) => {
      const { unit, status, detail, media, warnings = [] } = unitState;
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
        finished.add(unit);
      } else if (isCancelled(unitState)) {
        card.setStatus('cancelled', 'cancelled');
        card.element.title = detail;
      } else if (status === 'failed') {
        card.setStatus(`failed: ${detail}`, 'error');
      } else {
        card.setStatus(...unitStatusText(unitState));
      }
      if (status === 'done' || status === 'failed') settled.add(unit);
      report();
    };
    const showState = (state) => {
      if (controller.signal.aborted) return;
      this._showState(state, body.run_on);
      report();
    };
    report();
    try {
      const done = await api.runAtlas(body, {
        atlas: (state) => {
          state.units.forEach(update);
          showState(state);
        },
        unit: (unit) => {
          update(unit);
          if (!controller.signal.aborted && this.state?.status === 'running') this._setLeft(unit.eta_s);
        },
      }, controller.signal);
      showState(done);
    } catch (error) {
      if (error.name === 'AbortError') return;
      this._stopTicking();
      this.cancelButton.hidden = true;
      this.summary.textContent = `The atlas failed: ${error.message}`;
    }
  }

  /** Ask the server to stop the atlas (only its starter may): the socket then brings the cancelled units. */
  async cancel() {
    if (!this.state) return;
    this.cancelButton.disabled = true;
    try {
      await api.cancelAtlas(this.state.id);
    } catch (error) {
      this._setNote(`Cannot cancel: ${error.message}`, 'error');
    } finally {
      this.cancelButton.disabled = false;
    }
  }

  close() {
    this.controller?.abort();
    this._stopTicking();
    for (const card of this.cards) card.dispose();
    this.cards = [];
    this.state = null;
    this.body = null;
    this.cancelButton.hidden = true;
    this._setNote('');
    this.eta.textContent = '';
    this.root.hidden = true;
  }

  /** Show the server's state of the atlas: the time left, the cancel button, what happens when left. */
  _showState(state, runOnAsked) {
    this.state = state;
    const running = state.status === 'running';
    this.cancelButton.hidden = !running || !state.yours;
    this._setNote(atlasNote(state, runOnAsked));
    this._setLeft(running ? state.eta_s : null);
  }

  /** Count down from the server's newest estimate of the time left (seconds; null: none). */
  _setLeft(seconds) {
    this.left = seconds !== null && seconds !== undefined ? { seconds, at: performance.now() } : null;
    this._showLeft();
    if (this.left && !this.ticking) this.ticking = setInterval(() => this._showLeft(), TICK_MS);
    if (!this.left) this._stopTicking();
  }

  _showLeft() {
    if (!this.left) {
      this.eta.textContent = '';
      return;
    }
    const seconds = this.left.seconds - (performance.now() - this.left.at) / 1000;
    this.eta.textContent = seconds > 0 ? `about ${duration(seconds * 1000)} left` : 'finishing…';
  }

  _stopTicking() {
    clearInterval(this.ticking);
    this.ticking = null;
  }

  _setNote(text, state = '') {
    this.note.textContent = text;
    this.note.dataset.state = state;
    this.note.hidden = !text;
  }

  _tile(unit, title) {
    const card = new ClipCard(this.timeline, title);
    card.element.classList.add('tile');
    card.element.dataset.unit = String(unit);
    card.setStatus(...STATUS_TEXT.queued);
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

/** Which atlas a request asks for: its model, layer and settings (not whether it runs on). */
function requestKey({ model, layer, settings }) {
  return JSON.stringify([model, layer, settings ?? {}]);
}
