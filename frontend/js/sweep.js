// Sweeps: one unit several times side by side, changing one thing. The speed sweep scales the
// temporal weights, fast -> slow (weak temporal regularisation lets fast-changing inputs appear,
// strong forces slow ones: the paper's key knob); the seed sweep shows the diversity of solutions.

import * as api from './api.js';
import { ClipCard } from './clip-card.js';
import { queuedText } from './format.js';
import { previewStrips, resultStrips } from './media.js';

/** Multiples of the chosen temporal weights, fast -> slow. */
export const SPEED_FACTORS = [0.01, 0.1, 1, 10, 100];
export const SEED_COUNT = 5;
const MAX_TEMPORAL_WEIGHT = 1000;
const MAX_SEED = 2 ** 31 - 1;

/** The temporal weights of one speed column: the chosen ones times `factor` (the factor itself where one is 0). */
export function sweptTemporalWeights(temporal, factor) {
  const scale = (weight) => Number(Math.min(MAX_TEMPORAL_WEIGHT, (weight || 1) * factor).toPrecision(3));
  return Object.fromEntries(Object.entries(temporal).map(([stream, weight]) => [stream, scale(weight)]));
}

/**
 * The columns of a sweep of `kind` ('speed' or 'seeds') around `values`, the full settings in use:
 * [{title, hint, settings}], `settings` being what the column changes.
 */
export function sweepColumns(kind, values) {
  if (kind === 'speed') {
    return SPEED_FACTORS.map((factor) => {
      const tvTime = sweptTemporalWeights(values.weights.tv_time, factor);
      const hint = Object.entries(tvTime).map(([stream, weight]) => `${stream} ${weight}`).join(', ');
      return { title: `×${factor}`, hint: `temporal weights: ${hint}`, settings: { weights: { tv_time: tvTime } } };
    });
  }
  if (kind === 'seeds') {
    return Array.from({ length: SEED_COUNT }, (_, i) => {
      const seed = (values.seed + i) % (MAX_SEED + 1);
      return { title: `seed ${seed}`, hint: `random seed ${seed}`, settings: { seed } };
    });
  }
  throw new Error(`no sweep of kind ${kind}`);
}

const HEADINGS = {
  speed: ['Speed sweep', 'temporal weight × factor: fast ⟶ slow'],
  seeds: ['Seed sweep', 'other random starts: how diverse are the solutions?'],
};

export class Sweep {
  constructor(root, timeline) {
    this.root = root;
    this.grid = root.querySelector('.sweep-grid');
    this.timeline = timeline;
    this.cards = [];
    this.controller = null;
    this.kind = null;
  }

  get active() {
    return !this.root.hidden;
  }

  /**
   * Run `body` (model, layer, unit, settings overrides) once per column of a sweep of `kind` around
   * `values` (the full settings in use), one after another; `model` is its description.
   */
  async run(kind, body, values, model) {
    this.close();
    const controller = (this.controller = new AbortController());
    const [heading, axis] = HEADINGS[kind];
    this.kind = kind;
    this.root.hidden = false;
    this.root.querySelector('h2').textContent = heading;
    this.root.querySelector('.axis').textContent = axis;
    const columns = sweepColumns(kind, values).map((column, index) => {
      const card = new ClipCard(this.timeline, column.title);
      card.element.dataset.index = String(index);
      card.element.title = column.hint;
      card.setStatus('waiting', 'queued');
      this.cards.push(card);
      this.grid.append(card.element);
      return { card, request: { ...body, settings: merge(structuredClone(body.settings ?? {}), column.settings) } };
    });
    for (const { card, request } of columns) {
      if (controller.signal.aborted) return;
      await this._runColumn(card, request, model, controller.signal);
    }
  }

  /** Stop the sweep and remove it from the page. */
  close() {
    this.controller?.abort();
    for (const card of this.cards) card.dispose();
    this.cards = [];
    this.kind = null;
    this.root.hidden = true;
  }

  async _runColumn(card, request, model, signal) {
    card.setStatus('starting…', 'busy');
    try {
      const done = await api.runLive(request, {
        queued: (message) => card.setStatus(queuedText(message, true), 'queued'),
        progress: (message) => {
          card.setStatus(`step ${message.step} / ${message.steps}`, 'busy');
          return card.show(previewStrips(message));
        },
      }, signal);
      await card.show(resultStrips(done, model));
      card.setStatus('done', 'done');
      const link = card.addAction(document.createElement('a'));
      link.href = done.share_path;
      link.textContent = 'open';
      link.title = 'Open this column as its own visualisation (its share link)';
    } catch (error) {
      if (error.name !== 'AbortError') card.setStatus(`failed: ${error.message}`, 'error');
    }
  }
}

/** Deep-merge plain object `extra` into `target`. */
function merge(target, extra) {
  for (const [key, value] of Object.entries(extra)) {
    const nested = value && typeof value === 'object' && !Array.isArray(value);
    target[key] = nested ? merge(target[key] ?? {}, value) : value;
  }
  return target;
}
