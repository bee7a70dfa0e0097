// Presentation mode for teaching: full screen, large loops, a tour of units with a caption per
// stop, driven from the keyboard (arrows / Page Up / Page Down move between stops, Esc leaves).
// A tour is a small JSON file under /static/tours/: {title, stops: [{model, layer, unit, settings?, caption}]}.

import * as api from './api.js';
import { LOGITS } from './choice.js';
import { flowKey } from './flow-key.js';
import { formatNumber, queuedText } from './format.js';
import { className, randomBadge } from './model-info.js';
import { previewStrips, resultStrips, STREAMS } from './media.js';
import { showExamples } from './unit-examples.js';
import { StripPlayer } from './strip-player.js';
import { Timeline } from './timeline.js';

const TOUR_NAME = /^[\w-]{1,64}$/;
const NEXT_KEYS = new Set(['ArrowRight', 'PageDown', 'n']);
const PREVIOUS_KEYS = new Set(['ArrowLeft', 'PageUp']);
const EXAMPLES = 2; // dataset clips shown under a stop

export async function loadTour(name) {
  if (!TOUR_NAME.test(name)) throw new Error(`not a tour name: ${name}`);
  const tour = await api.getTour(name);
  if (!Array.isArray(tour.stops) || !tour.stops.length) throw new Error(`the tour ${name} has no stops`);
  return tour;
}

export class Presentation extends EventTarget {
  /** @param describe  model id -> its description (GET /api/models/{id}), cached by the caller */
  constructor(root, describe) {
    super();
    this.root = root;
    this.describe = describe;
    this.timeline = new Timeline({ fps: 6 });
    this.timeline.pause();
    this.title = root.querySelector('.present-title');
    this.counter = root.querySelector('.present-counter');
    this.caption = root.querySelector('.present-caption');
    this.status = root.querySelector('.present-status');
    this.what = root.querySelector('.present-what');
    this.objective = root.querySelector('.present-objective');
    this.faithfulness = root.querySelector('.present-faithfulness');
    this.examples = root.querySelector('.present-examples');
    this.key = root.querySelector('.present-key');
    this.key.append(flowKey().figure);
    this.players = Object.fromEntries(STREAMS.map((stream) => {
      const canvas = root.querySelector(`.present-clip[data-stream="${stream}"] canvas`);
      return [stream, new StripPlayer(canvas, this.timeline)];
    }));
    this.name = null;
    this.tour = null;
    this.stop = 0;
    this.controller = null;
    root.querySelector('.present-prev').addEventListener('click', () => this.go(this.stop - 1));
    root.querySelector('.present-next').addEventListener('click', () => this.go(this.stop + 1));
    root.querySelector('.present-close').addEventListener('click', () => this.close());
    document.addEventListener('keydown', (event) => this._key(event));
  }

  get active() {
    return !this.root.hidden;
  }

  async open(name, stop = 0) {
    this.tour = await loadTour(name);
    this.name = name;
    this.root.hidden = false;
    document.body.classList.add('presenting');
    this.timeline.play();
    this.title.textContent = this.tour.title ?? name;
    document.documentElement.requestFullscreen?.().catch(() => { /* not allowed here: stay in the window */ });
    await this.go(stop);
  }

  close() {
    this.controller?.abort();
    this.timeline.pause();
    this.root.hidden = true;
    document.body.classList.remove('presenting');
    if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
    this.dispatchEvent(new Event('change'));
  }

  /** Show stop `index` (clamped): live while it computes, then its loop; the next one is warmed up. */
  async go(index) {
    const stops = this.tour.stops;
    this.stop = Math.max(0, Math.min(index, stops.length - 1));
    this.controller?.abort();
    const controller = (this.controller = new AbortController());
    const stop = stops[this.stop];
    this.counter.textContent = `${this.stop + 1} / ${stops.length}`;
    this.caption.textContent = stop.caption ?? '';
    this.root.querySelector('.present-prev').disabled = this.stop === 0;
    this.root.querySelector('.present-next').disabled = this.stop === stops.length - 1;
    for (const player of Object.values(this.players)) {
      player.clear();
      player.canvas.parentElement.hidden = true;
    }
    this.key.hidden = true;
    this.what.textContent = '';
    this.objective.textContent = '';
    this.faithfulness.hidden = true;
    this.examples.hidden = true;
    const where = `${stop.model} · ${stop.layer} · unit ${stop.unit}`;
    this._setStatus(`${where} · waiting for the server…`, 'busy');
    this.dispatchEvent(new Event('change'));
    try {
      const model = await this.describe(stop.model);
      if (controller.signal.aborted) return;
      this.what.replaceChildren(stopName(model, stop), ...[randomBadge(model)].filter(Boolean));
      const done = await api.runLive(requestOf(stop), {
        queued: (message) => this._setStatus(`${where} · ${queuedText(message, true)}`, 'busy'),
        progress: (message) => {
          this._setStatus(`${where} · computing, step ${message.step} / ${message.steps}`, 'busy');
          this.objective.textContent = `objective ${formatNumber(message.objective)} (step ${message.step})`;
          return this._show(previewStrips(message));
        },
      }, controller.signal);
      await this._show(resultStrips(done, model));
      this.objective.textContent = `objective ${formatNumber(done.result.objective)}: the unit's response to this input`
        + (stop.layer === LOGITS ? ' (the class score)' : ' (its mean activation)');
      // the most telling line of how far to trust it (what independent models see, for a class)
      this.faithfulness.textContent = done.result.faithfulness?.summary?.[0] ?? '';
      this.faithfulness.hidden = !this.faithfulness.textContent;
      this._setStatus(where, 'done');
      if (model.dataset_examples) this._showExamples(stop, controller.signal);
      const next = stops[this.stop + 1];
      // warmed up as a prefetch: it waits behind every interactive request, and becomes one when shown
      if (next) api.runLive(requestOf(next), {}, controller.signal, 'background').catch(() => { /* warming only */ });
    } catch (error) {
      if (error.name !== 'AbortError') this._setStatus(`${where} · failed: ${error.message}`, 'error');
    }
  }

  async _show(strips) {
    const frames = Object.values(strips).map((strip) => strip.frames);
    if (frames.length) this.timeline.setFrames(Math.max(...frames));
    if (strips.motion) this.key.hidden = false; // the stop's flow is direction coded: the wheel is its key
    await Promise.all(Object.entries(strips).map(([stream, strip]) => {
      this.players[stream].canvas.parentElement.hidden = false;
      return this.players[stream].show(strip.src, strip);
    }));
  }

  /** The test clips that drive the stop's unit most: what it responds to in the data. */
  async _showExamples(stop, signal) {
    const examples = document.createElement('div'); // filled off screen: a later stop may come first
    try {
      await showExamples(examples, stop.model, stop.layer, stop.unit, EXAMPLES);
      if (signal.aborted) return;
      this.examples.replaceChildren(...examples.childNodes);
      this.examples.hidden = false;
    } catch {
      this.examples.hidden = true; // the stop stands without them
    }
  }

  _setStatus(text, state) {
    this.status.textContent = text;
    this.status.dataset.state = state;
  }

  _key(event) {
    if (!this.active || event.altKey || event.ctrlKey || event.metaKey) return;
    if (NEXT_KEYS.has(event.key)) this.go(this.stop + 1);
    else if (PREVIOUS_KEYS.has(event.key)) this.go(this.stop - 1);
    else if (event.key === 'Home') this.go(0);
    else if (event.key === 'End') this.go(this.tour.stops.length - 1);
    else if (event.key === ' ') this.timeline.toggle();
    else if (event.key === 'Escape') this.close();
    else return;
    event.preventDefault(); // the page under the presentation does not see the key
  }
}

/** What a stop shows, in words: the model, the layer and the unit (the class, for a class unit). */
function stopName(model, { layer, unit }) {
  const what = layer === LOGITS ? `class "${className(model, unit)}" (unit ${unit} of the logits)` : `${layer}, unit ${unit}`;
  return `${model.title} · ${what}`;
}

function requestOf({ model, layer, unit, settings }) {
  return { model, layer, unit, settings: settings ?? {} };
}
