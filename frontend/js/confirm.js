// Heavy work asks first: before an atlas, a sweep or a run that the server estimates at more than its
// `heavy_s` (30 s), the page says how long it takes here and waits for a yes, in the page itself (not
// window.confirm: it stays styled, readable and usable by keyboard); light work starts at once.

import * as api from './api.js';
import { duration, paceSource } from './format.js';

/** The question for heavy work: `what` ("This atlas (64 units)") and how long it takes here. */
export function heavyQuestion(what, { seconds, source }) {
  return `${what} takes about ${duration(seconds * 1000)} here, ${paceSource(source)}.`;
}

/** Whether every run of an estimate is stored here already: it opens at once, nothing to ask. */
export const allStored = (estimate) => estimate.stored > 0 && estimate.stored === estimate.runs;

/**
 * The estimate request for `body` (a visualisation's, or an atlas's: no unit), `runs` of it or its
 * atlas; one run of a unit from noise names the unit, so that a result stored here costs nothing.
 */
export function estimateBody({ model, layer, unit, start, settings = {} }, { runs = 1, atlas = false } = {}) {
  const one = runs === 1 && !atlas && unit !== undefined && !start;
  return { model, layer, settings, runs, atlas, ...(one ? { unit } : {}) };
}

export class ConfirmPanel {
  /** @param {Element} root  the panel: a `.confirm-text`, a `.confirm-start` and a `.confirm-cancel` button */
  constructor(root) {
    this.root = root;
    this.text = root.querySelector('.confirm-text');
    this.start = root.querySelector('.confirm-start');
    this.answer = null; // resolves the question on screen
    this.round = 0; // counts dismissals: a question whose estimate comes after one is not asked
    this.returnTo = null; // what had the focus before the question took it
    this.start.addEventListener('click', () => this._settle(true));
    root.querySelector('.confirm-cancel').addEventListener('click', () => this._settle(false));
    root.addEventListener('keydown', (event) => {
      if (event.key !== 'Escape') return;
      event.preventDefault();
      this._settle(false);
    });
  }

  /** Show `text` and wait: true once started, false when cancelled, null when taken away (another
   * question, or a dismissal). */
  ask(text, startLabel) {
    this._settle(null);
    this.returnTo = document.activeElement;
    this.text.textContent = text;
    this.start.textContent = startLabel;
    this.root.hidden = false;
    this.start.focus(); // brings the question into view (below the controls on a phone) and reads it out
    return new Promise((resolve) => {
      this.answer = resolve;
    });
  }

  /** Take the question away unanswered (the choice it was about changed), and any about to be asked. */
  dismiss() {
    this.round += 1;
    this._settle(null);
  }

  _settle(yes) {
    const answer = this.answer;
    if (!answer) return;
    this.answer = null;
    const focused = this.root.contains(document.activeElement);
    this.root.hidden = true;
    if (focused && this.returnTo?.isConnected && this.returnTo !== document.body) this.returnTo.focus();
    answer(yes);
  }
}

/**
 * Whether to start some work: true at once when it is light (or no estimate can be had: it starts as
 * it always did), else after a yes on `panel`; false when the user said no, null when the question
 * was taken away first. `what` names the work, from its estimate.
 */
export async function confirmHeavy(panel, body, what, startLabel) {
  const round = panel.round;
  let estimate;
  try {
    estimate = await api.estimateWork(body);
  } catch {
    estimate = { heavy: false };
  }
  if (panel.round !== round) return null; // the choice changed while the estimate came
  return !estimate.heavy || panel.ask(heavyQuestion(what(estimate), estimate), startLabel);
}
