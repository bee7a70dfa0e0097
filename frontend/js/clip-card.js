// A small card showing one visualisation's clips side by side (used by the sweep and the pins).

import { STREAMS } from './media.js';
import { StripPlayer } from './strip-player.js';

export class ClipCard {
  /** @param {import('./timeline.js').Timeline} timeline  the clock the card's clips follow */
  constructor(timeline, title) {
    this.timeline = timeline;
    this.element = document.createElement('figure');
    this.element.className = 'card';
    const caption = document.createElement('figcaption');
    this.title = document.createElement('span');
    this.title.className = 'card-title';
    this.title.textContent = title;
    caption.append(this.title);
    this.actions = document.createElement('span');
    this.actions.className = 'card-actions';
    caption.append(this.actions);
    const clips = document.createElement('div');
    clips.className = 'card-clips';
    this.players = {};
    for (const stream of STREAMS) {
      const canvas = document.createElement('canvas');
      canvas.className = 'clip';
      canvas.dataset.stream = stream;
      canvas.setAttribute('aria-label', stream);
      canvas.hidden = true;
      clips.append(canvas);
      this.players[stream] = new StripPlayer(canvas, timeline);
    }
    this.status = document.createElement('p');
    this.status.className = 'card-status';
    this.element.append(caption, clips, this.status);
  }

  /** Show strips ({stream: {src, frames, aspect}}); streams left out keep what they show. */
  async show(strips) {
    const frames = Object.values(strips).map((strip) => strip.frames);
    if (frames.length) this.timeline.setFrames(Math.max(...frames));
    await Promise.all(Object.entries(strips).map(([stream, strip]) => {
      this.players[stream].canvas.hidden = false;
      return this.players[stream].show(strip.src, strip);
    }));
  }

  setStatus(text, state = '') {
    this.status.textContent = text;
    this.status.dataset.state = state;
  }

  /** Add a link or button to the card's caption. */
  addAction(element) {
    this.actions.append(element);
    return element;
  }

  dispose() {
    for (const player of Object.values(this.players)) player.dispose();
    this.element.remove();
  }
}
