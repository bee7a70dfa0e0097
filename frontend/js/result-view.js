// The stage: progress, the appearance and motion clips (live previews, then the result), share link.

import { getJSON, inputsUrl } from './api.js';
import { flowKey } from './flow-key.js';
import { formatNumber } from './format.js';
import { CODINGS, hasEvidence, previewStrips, resultStrips, STREAMS } from './media.js';
import { StripPlayer } from './strip-player.js';

/** What the faithfulness lines will say, one a line as they will, while the run they measure goes. */
const PENDING_FAITHFULNESS = [
  'Measured when the optimisation ends: what independent models see in it (for a class),',
  'whether its activations follow the unit\'s top test clips at the earlier layers,',
  'how hard it drives the unit against the test clip that drives it hardest,',
  'and how its statistics compare with the training clips\'.',
];

const CODING_CAPTIONS = {
  direction: 'the optical flow: hue is the direction, saturation the speed, white is still',
  components: 'the optical flow: x in red, y in green, speed in blue, grey is still',
  arrows: 'the optical flow: arrows over the direction coding',
};
/** The codings that the colour wheel is the key to (arrows are drawn over the direction coding). */
const WHEEL_CODINGS = new Set(['direction', 'arrows']);

export class ResultView extends EventTarget {
  /** @param {Element} root  the stage: status line, the two viewers, the share panel */
  constructor(root, timeline) {
    super();
    this.root = root;
    this.timeline = timeline;
    this.coding = CODINGS[0];
    this.shown = null; // {visualization, model} of the finished result on screen
    this.rimPx = null; // the flow magnitude shown at full scale in the result's codings (px), when known
    const part = (selector) => root.querySelector(selector);
    this.codingInputs = [...root.querySelectorAll('input[name="coding"]')];
    this.codingCaption = part('.coding-caption');
    this.legend = part('.flow-key-slot');
    this.key = flowKey();
    this.legend.append(this.key.figure);
    this.exports = part('.exports');
    this.statusText = part('.status-text');
    this.objective = part('.objective');
    this.progress = part('.progress');
    this.empty = part('.empty');
    this.share = part('.share');
    this.warnings = part('.result-warnings');
    this.faithfulness = part('.faithfulness');
    this.evidence = part('input[name="evidence"]');
    this.modelNote = part('.model-note');
    this.shareInput = part('.share-url');
    this.viewers = Object.fromEntries(STREAMS.map((stream) => {
      const figure = part(`.viewer[data-stream="${stream}"]`);
      return [stream, { figure, player: new StripPlayer(figure.querySelector('canvas'), timeline) }];
    }));
    part('.copy').addEventListener('click', () => this._copyShare());
    // The evidence strips are direction-coded: ticking them shows the direction coding, and picking
    // another coding takes them away, so the chosen tab and the caption always say what is drawn.
    this.evidence.addEventListener('change', () => {
      if (this.evidence.checked && this.coding !== CODINGS[0]) {
        this.setCoding(CODINGS[0]);
        this.dispatchEvent(new Event('coding'));
      } else this._showAgain();
    });
    for (const input of this.codingInputs) {
      input.addEventListener('change', () => {
        if (input.value !== CODINGS[0]) this.evidence.checked = false;
        this.setCoding(input.value);
        this.dispatchEvent(new Event('coding'));
      });
    }
    this._showCoding();
  }

  /** Show the flow as `coding` (one of CODINGS); live previews always come direction-coded. */
  setCoding(coding) {
    if (!CODINGS.includes(coding)) return;
    this.coding = coding;
    this._showCoding();
    this._showAgain();
  }

  /** Draw the shown result's strips again (another coding, the evidence overlay on or off). */
  _showAgain() {
    if (!this.shown) return;
    this._showCoding();
    this._showStrips(this._resultStrips(), true)
      .catch((error) => this.setStatus(`Cannot show the result: ${error.message}`, 'error'));
  }

  /** A new run begins: forget the old clips. */
  start(message) {
    delete this.root.dataset.stale;
    this.setStatus(message, 'busy');
    this.progress.removeAttribute('value'); // indeterminate until the first progress message
    this.objective.textContent = '';
    this.share.hidden = true;
    this.warnings.hidden = true;
    this._showFaithfulness(null);
    this.shown = null;
    this._showCoding();
    for (const { figure, player } of Object.values(this.viewers)) {
      player.clear();
      figure.hidden = true;
    }
    this.empty.hidden = false;
  }

  async showProgress(message) {
    this.progress.max = message.steps;
    this.progress.value = message.step;
    this.objective.textContent = `objective ${formatNumber(message.objective)}`;
    this.timeline.setFrames(message.frames);
    await this._showStrips(previewStrips(message));
  }

  /** Show a finished visualisation (`GET /api/visualizations/{id}` object) of a model description. */
  async showResult(visualization, model) {
    const { result } = visualization;
    delete this.root.dataset.stale;
    this.shown = { visualization, model };
    this.rimPx = null;
    const scale = result.media['flow-legend.json'];
    const legendRead = scale ? getJSON(scale).then((legend) => {
      if (this.shown?.visualization === visualization) this.rimPx = legend.rim_px;
    }).catch(() => { /* the caption just goes without the scale */ }) : Promise.resolve();
    this.progress.max = result.steps;
    this.progress.value = result.steps;
    this.objective.textContent = `objective ${formatNumber(result.objective)}`;
    const strips = this._resultStrips();
    this.timeline.setFrames(Math.max(...Object.values(strips).map((s) => s.frames)));
    this._showCoding();
    this._showExports(visualization);
    this._showWarnings(result.warnings ?? []);
    this._showFaithfulness(result.faithfulness);
    await Promise.all([this._showStrips(strips, true), legendRead]);
    this._showCoding();
    this.share.hidden = false;
  }

  /** The choice moved away from the result on screen: its clips stay, dimmed and marked as another
   * choice's (a class must not read them as the new one's), and its share link goes. */
  detach(message) {
    this.root.dataset.stale = '';
    this.share.hidden = true;
    this._dropPending(); // the run it waited for is not watched any more
    this.setStatus(message);
  }

  /** The choice came back to the result on screen (after detach): it is the choice's own again. */
  reattach(message) {
    delete this.root.dataset.stale;
    this.share.hidden = false;
    this.setStatus(message, 'done');
  }

  setShareUrl(url) {
    this.shareInput.value = url;
  }

  setStatus(text, state = '') {
    this.statusText.textContent = text;
    this.statusText.dataset.state = state;
    if (state === 'error') this._dropPending(); // no result will come to measure
  }

  _dropPending() {
    if (this.faithfulness.hasAttribute('data-pending')) this.faithfulness.hidden = true;
  }

  _resultStrips() {
    return resultStrips(this.shown.visualization, this.shown.model, this.coding, this.evidence.checked);
  }

  /** How far to trust the picture (result.faithfulness), in plain words; older results have none. null while
   * a run goes: what the lines will say, in their place, so the pictures do not move down by their height
   * when the run ends. */
  _showFaithfulness(faithfulness) {
    const pending = faithfulness === null;
    const lines = pending ? PENDING_FAITHFULNESS : faithfulness?.summary ?? [];
    this.faithfulness.querySelector('ul').replaceChildren(...lines.map((text) => {
      const item = document.createElement('li');
      item.textContent = text;
      return item;
    }));
    this.faithfulness.toggleAttribute('data-pending', pending);
    this.faithfulness.hidden = !lines.length;
  }

  _showCoding() {
    const live = !this.shown;
    const evidence = !live && hasEvidence(this.shown.visualization);
    this.evidence.disabled = !evidence;
    this.evidence.closest('label').hidden = !evidence;
    for (const { figure } of Object.values(this.viewers)) {
      figure.querySelector('.clip-box').classList.toggle('evidence', evidence && this.evidence.checked);
    }
    const coding = live ? CODINGS[0] : this.coding; // live previews come direction-coded
    for (const input of this.codingInputs) {
      input.checked = input.value === coding;
      input.disabled = live && input.value !== coding;
    }
    const rim = !live && this.rimPx !== null ? Number(this.rimPx.toPrecision(3)) : null;
    const evidenceNote = !live && this.evidence.checked ? ' · evidence: direction coding, faded where the unit looks less' : '';
    this.codingCaption.textContent = CODING_CAPTIONS[coding] + (rim === null ? '' : ` · full scale ${rim} px, faster is clipped`) + evidenceNote;
    this.key.scale.textContent = rim === null
      ? 'white: still · pale: slow · saturated: fast'
      : `white: still · the rim: ${rim} px a frame or faster`;
    this.legend.hidden = !WHEEL_CODINGS.has(coding);
  }

  /** A result that may show nothing says so under the status line (result.warnings, one sentence each). */
  _showWarnings(warnings) {
    this.warnings.replaceChildren(...warnings.map((text) => {
      const line = document.createElement('p');
      line.className = 'caveat';
      line.textContent = text;
      return line;
    }));
    this.warnings.hidden = !warnings.length;
  }

  /** A line about the model under the status line (e.g. that its weights are random); empty hides it. */
  setModelNote(text) {
    this.modelNote.textContent = text;
    this.modelNote.hidden = !text;
  }

  _showExports({ id, result }) {
    const files = [...Object.entries(result.media), ['inputs.npz', result.inputs ?? inputsUrl(id)]];
    this.exports.replaceChildren(...files.map(([name, url]) => {
      const link = document.createElement('a');
      link.href = url;
      link.download = `${id}-${name}`;
      link.textContent = name;
      return link;
    }));
  }

  async _showStrips(strips, exclusive = false) {
    const shown = [];
    for (const [stream, { figure, player }] of Object.entries(this.viewers)) {
      const strip = strips[stream];
      if (strip) {
        figure.hidden = false;
        shown.push(player.show(strip.src, strip));
      } else if (exclusive) {
        player.clear();
        figure.hidden = true;
      }
    }
    this.empty.hidden = Object.values(this.viewers).some(({ figure }) => !figure.hidden);
    await Promise.all(shown);
  }

  /** Say `text` on the copy button for a moment: the status line may be scrolled out of sight. */
  _saidOnTheButton(text) {
    const button = this.share.querySelector('.copy');
    button.dataset.label ??= button.textContent;
    button.textContent = text;
    clearTimeout(this._copiedTimer);
    this._copiedTimer = setTimeout(() => { button.textContent = button.dataset.label; }, 2000);
  }

  async _copyShare() {
    this.shareInput.select();
    try {
      await navigator.clipboard.writeText(this.shareInput.value);
      this._saidOnTheButton('Copied');
    } catch {
      this.setStatus('Select the link and copy it (the browser refused clipboard access).', 'error');
    }
  }
}
