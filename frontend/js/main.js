// Wires the page together: pick a unit, run it live over the WebSocket, show and share the result;
// around it the sweeps, the atlas, the pinned comparisons and the presentation mode.

import * as api from './api.js';
import { Atlas, layerKey } from './atlas.js';
import { ChoiceForm } from './choice.js';
import { allStored, ConfirmPanel, confirmHeavy, estimateBody } from './confirm.js';
import { duration, paceSource, queuedText, seconds } from './format.js';
import { CODINGS } from './media.js';
import { aboutModel, RANDOM_NOTE } from './model-info.js';
import { PinBoard } from './pins.js';
import { Presentation } from './presentation.js';
import { ResultView } from './result-view.js';
import { layerChoicesUnset, SettingsPanel } from './settings.js';
import { Sweep, sweepColumns } from './sweep.js';
import { Timeline } from './timeline.js';
import { showExamples } from './unit-examples.js';
import { bindKeys, bindTransport } from './transport.js';
import * as urlstate from './urlstate.js';

const BUILTIN_TOUR = 'builtin';
const HEALTH_EVERY_MS = 15_000;

const timeline = new Timeline();
const view = new ResultView(document.querySelector('.stage'), timeline);
const choice = new ChoiceForm(document.querySelector('#choice'));
const describe = (modelId) => choice.describe(modelId);
const settings = new SettingsPanel(document.querySelector('#settings'));
const sweep = new Sweep(document.querySelector('#sweep'), timeline);
const sweepButtons = { speed: document.querySelector('#sweep-speed'), seeds: document.querySelector('#sweep-seeds') };
const atlas = new Atlas(document.querySelector('#atlas'), timeline);
const atlasRunOn = document.querySelector('#atlas-run-on');
const confirmPanel = new ConfirmPanel(document.querySelector('#confirm'));
const pins = new PinBoard(document.querySelector('#pins'), timeline, describe);
// Made before the page's own shortcuts are bound, so that its keys come first while it is open.
const presentation = new Presentation(document.querySelector('#presentation'), describe);

let running = null; // AbortController of the run being watched, null when none is
let shown = null; // {id, sharePath, asked} of the result on screen, while the choice still matches it
let detached = null; // the same of a result still on screen, dimmed, after the choice moved away from it
let addressReady = false; // the address is left alone until the page has read it and loaded the choice
let startClip = null; // the real clip the visualisation starts from ({example: 3}...), null: from noise
let estimateRound = 0; // counts the estimates asked for: only the newest one is shown

function request() {
  return { ...choice.value(), settings: settings.overrides(), ...(startClip ? { start: startClip } : {}) };
}

/** What the start clip is, in words, under the status line; nothing when the run starts from noise. */
function showStart() {
  const note = document.querySelector('#start-note');
  note.hidden = !startClip;
  if (!startClip) return;
  const [[kind, value]] = Object.entries(startClip);
  const what = { example: `test clip ${value}`, sample: `the sample ${value}`, upload: 'your uploaded clip' }[kind];
  note.querySelector('.start-text').textContent = `Accentuating ${what}: the optimisation starts from it and stays near it, so the result shows what in it drives the unit.`;
}

/** Keep the address in step with the page: a tour stop, the result's share link, or the choice. */
function updateAddress() {
  if (!addressReady) return;
  if (presentation.active) {
    urlstate.writeTour(presentation.name, presentation.stop);
    return;
  }
  const viewEntries = view.coding === CODINGS[0] ? [] : [['coding', view.coding]];
  if (sweep.active) viewEntries.push(['sweep', sweep.kind]);
  if (atlas.active) viewEntries.push(['atlas', '1']);
  if (pins.ids().length) viewEntries.push(['pins', pins.tokens().join(',')]);
  if (shown) {
    urlstate.writeShare(shown.sharePath, viewEntries);
    view.setShareUrl(location.href);
  } else {
    urlstate.writeChoice(choice.value(), [...settings.queryEntries(), ...urlstate.startEntries(startClip), ...viewEntries]);
  }
}

/**
 * Run `body` (or get it from the cache) and show it; the address becomes the share link. A run the
 * server estimates as heavy starts only once confirmed.
 */
async function visualise(body) {
  const go = await confirmHeavy(confirmPanel, estimateBody(body), () => 'This visualisation', 'Start');
  if (go === false) view.setStatus('Not started.');
  else if (go === null) view.setStatus('Not started: the choice changed meanwhile. Press Visualise to run it.');
  if (!go) return;
  running?.abort();
  const controller = (running = new AbortController());
  const started = performance.now();
  let firstPreview = null;
  let queuedFrom = null; // the first queued message: the run waited its turn from there
  let rateFrom = null; // the first progress message: the pace is measured from there (set-up excluded)
  document.querySelector('#examples').hidden = true;
  detached = null; // its clips leave the screen now
  view.start('Connecting…');
  revealed(view.root); // on a phone the stage is below the choice
  try {
    const model = await describe(body.model);
    const done = await api.runLive(body, {
      accepted: () => view.setStatus('Optimising…', 'busy'),
      queued: (message) => {
        queuedFrom ??= performance.now();
        view.setStatus(queuedText(message), 'queued');
      },
      progress: (message) => {
        const now = performance.now();
        firstPreview ??= now - started;
        rateFrom ??= { step: message.step, time: now };
        const stepsDone = message.step - rateFrom.step;
        const left = stepsDone > 0 ? ` · about ${duration(((now - rateFrom.time) / stepsDone) * (message.steps - message.step))} left` : '';
        view.setStatus(message.step === message.steps
          ? `Optimised: step ${message.step} / ${message.steps}. Measuring how far to trust the picture…`
          : `Optimising… step ${message.step} / ${message.steps}${left}`, 'busy');
        return view.showProgress(message);
      },
    }, controller.signal);
    await showDone(done, model);
    showEstimate();
    const total = seconds(performance.now() - started);
    const waited = queuedFrom === null ? '' : `queued ${seconds(started + firstPreview - queuedFrom)}, `;
    const how = firstPreview === null ? `Computed before: opened in ${total}` : `Done in ${total} (${waited}first preview after ${seconds(firstPreview)})`;
    doneStatus(how, done);
  } catch (error) {
    if (error.name !== 'AbortError') view.setStatus(`Failed: ${error.message}`, 'error');
  } finally {
    if (running === controller) running = null;
  }
}

async function showDone(visualization, model) {
  if (visualization.status !== 'done') throw new Error(`the visualisation ${visualization.status}`);
  await view.showResult(visualization, model);
  shown = { id: visualization.id, sharePath: visualization.share_path, asked: JSON.stringify(request()) };
  detached = null;
  updateAddress();
  showUnitExamples(model, visualization.request);
}

/** The status of a finished result: a success only where it shows something (see result.warnings). */
function doneStatus(how, visualization) {
  const warned = visualization.result.warnings?.length;
  view.setStatus(warned ? `${how}, but this result may show nothing: see below.` : `${how}.`, warned ? 'warn' : 'done');
}

/** Before a run: that it is stored here already (it opens at once), or about how long it will take
 * on this server, at the pace of the newest run of the chosen layer here, or before its first run
 * here estimated from the layer's operations. */
async function showEstimate() {
  const line = document.querySelector('#estimate');
  const round = (estimateRound += 1);
  const body = request();
  let estimate;
  if (body.model && body.layer) {
    try {
      estimate = await api.estimateWork(estimateBody(body));
    } catch {
      estimate = undefined; // no estimate is better than a wrong one
    }
  }
  if (round !== estimateRound) return; // the choice moved on meanwhile (a newer estimate is coming)
  if (estimate === undefined) line.textContent = '';
  else if (allStored(estimate)) line.textContent = 'Stored here: opens at once.';
  else line.textContent = `About ${duration(estimate.seconds * 1000)} to compute here, ${paceSource(estimate.source)}.`;
}

/** The dataset examples of the result on screen, dimmed and marked once the choice moved away from it. */
function setExamplesStale(stale) {
  document.querySelector('#examples').toggleAttribute('data-stale', stale);
}

/** Beside the result, the dataset clips that drive the unit most (models of the synthetic world only). */
async function showUnitExamples(model, { layer, unit }) {
  const section = document.querySelector('#examples');
  setExamplesStale(false);
  section.hidden = !model.dataset_examples;
  if (!model.dataset_examples) return;
  const body = section.querySelector('#examples-body');
  try {
    await showExamples(body, model.id, layer, unit, undefined, settings.queryEntries()); // the result's settings
  } catch (error) {
    body.textContent = `No dataset examples: ${error.message}`;
  }
}

/** Open a share link: the cached result at once, or watch it being computed. */
async function openShared(id) {
  detached = null;
  view.start('Loading the shared visualisation…');
  revealed(view.root);
  const visualization = await api.getVisualization(id);
  const { model, layer, unit } = visualization.request;
  startClip = visualization.request.start ?? null;
  showStart();
  await choice.load({ model, layer, unit });
  settings.setValues(layerChoicesUnset(visualization.request.settings ?? {}, choice.layer, startClip !== null));
  showModel();
  addressReady = true;
  if (visualization.status === 'done') {
    await showDone(visualization, choice.model);
    // performance.now() counts from the start of the page load: the time to the first paint of the result.
    doneStatus(`Computed before: opened in ${seconds(performance.now())}`, visualization);
  } else {
    await visualise(visualization.request);
  }
}

/** The current choice several times side by side: at several temporal weights, or seeds; a heavy
 * sweep once confirmed. */
async function runSweep(kind) {
  const body = request();
  const runs = sweepColumns(kind, settings.values()).length;
  const what = () => `This ${kind === 'speed' ? 'speed' : 'seed'} sweep (${runs} runs)`;
  if (!(await confirmHeavy(confirmPanel, estimateBody(body, { runs }), what, 'Start sweep'))) return;
  const model = await describe(body.model);
  const pending = sweep.run(kind, body, settings.values(), model);
  revealed(sweep.root);
  updateAddress();
  await pending;
  showEstimate(); // at the pace the sweep measured
}

/** A section that just opened or started, brought into view where it lies under the fold (a sweep or an
 * atlas below the result on a laptop's screen, the stage below the choice on a phone's), where a class would
 * not see it come. */
function revealed(section) {
  const { top } = section.getBoundingClientRect();
  if (top > window.innerHeight * 0.6) section.scrollIntoView({ block: 'start' }); // at once: no box moves after
}

/**
 * Every unit of the chosen layer, with the chosen settings; a heavy atlas once confirmed (not asked
 * again for the atlas on screen, e.g. to keep it running).
 */
async function showAtlas() {
  const { unit, start, ...body } = request(); // an atlas starts every unit from noise
  const what = (estimate) => `This atlas (${estimate.runs} units${estimate.stored ? `, ${estimate.stored} stored here` : ''})`;
  const go = atlas.runs(body) || (await confirmHeavy(confirmPanel, estimateBody(body, { atlas: true }), what, 'Start atlas'));
  if (go === false && atlas.active && atlas.layerKey !== layerKey(body)) {
    atlas.close(); // declined: it showed another layer than the one chosen
    updateAddress();
  }
  if (!go) return;
  const pending = atlas.show({ ...body, run_on: atlasRunOn.checked }, await describe(body.model));
  revealed(atlas.root);
  updateAddress();
  await pending;
  showEstimate(); // at the pace the atlas measured
}

/** A unit chosen in the atlas: show it (its result is in the cache already, or soon). */
async function openUnit(unit) {
  await choice.select({ ...choice.value(), unit });
  shown = null;
  window.scrollTo({ top: 0, behavior: 'smooth' });
  await visualise(request());
}

/** What the page says about the chosen model: the random-weights note and its "About" dialog. */
function showModel() {
  const model = choice.model;
  view.setModelNote(model?.random_weights ? RANDOM_NOTE : '');
  if (model) document.querySelector('#model-dialog .model-about').replaceChildren(...aboutModel(model));
}

function pinShown() {
  if (shown) pins.add(shown.id);
}

async function present(name = BUILTIN_TOUR, stop = 0) {
  try {
    await presentation.open(name, stop);
  } catch (error) {
    view.setStatus(`Cannot present: ${error.message}`, 'error');
  }
}

async function showHealth() {
  const badge = document.querySelector('#health');
  try {
    const status = await api.health();
    badge.textContent = `${status.device} · cache ${status.cache}`;
    badge.dataset.state = status.cache === 'ok' ? 'ok' : 'warn';
  } catch {
    badge.textContent = 'server unreachable';
    badge.dataset.state = 'error';
  }
}

function bindPage() {
  bindTransport(document.querySelector('.transport'), timeline);
  const shortcuts = document.querySelector('#shortcuts');
  const showShortcuts = () => shortcuts.open || shortcuts.showModal();
  bindKeys(timeline, { p: pinShown, t: () => present(), '?': showShortcuts });
  document.querySelector('#help').addEventListener('click', showShortcuts);
  const choiceChanged = () => {
    // The page shows what the form says: stop watching a run of another choice (the server finishes
    // it and caches it all the same), and take away the share link of a result of another choice.
    running?.abort();
    confirmPanel.dismiss(); // a question about the choice before
    const back = detached && !running && detached.asked === JSON.stringify(request());
    if (back) {  // the choice came back to the result still on screen: it is this choice's again
      view.reattach('Back to the choice on screen: this is its result.');
      setExamplesStale(false);
      [shown, detached] = [detached, null];
    } else if (running || shown) {
      view.detach('The choice changed: press Visualise to see it.');
      setExamplesStale(true);
      detached = shown ?? detached;
      shown = null;
    }
    running = null;
    updateAddress();
    showEstimate();
    showModel();
    if (atlas.active && atlas.layerKey !== layerKey(choice.value())) showAtlas(); // follow the layer
  };
  choice.addEventListener('change', choiceChanged);
  settings.addEventListener('change', choiceChanged);
  document.querySelector('#start-note .start-clear').addEventListener('click', () => {
    startClip = null;
    showStart();
    choiceChanged();
  });
  // A bad value in the collapsed settings panel: open it, so that the browser can point at the field,
  // and say what is wrong in the status line.
  choice.form.addEventListener('invalid', (event) => {
    const panel = event.target.closest('details');
    if (panel) panel.open = true;
    const name = event.target.closest('label')?.querySelector('span')?.textContent ?? event.target.name;
    view.setStatus(`${name}: ${event.target.validationMessage}`, 'error');
  }, true);
  choice.form.addEventListener('submit', (event) => {
    event.preventDefault();
    event.submitter?.blur(); // so that Space then plays / pauses the result rather than pressing Visualise again
    visualise(request());
  });
  view.addEventListener('coding', updateAddress);
  pins.addEventListener('change', updateAddress);
  presentation.addEventListener('change', updateAddress);
  document.querySelector('#pin').addEventListener('click', pinShown);
  document.querySelector('#about-model').addEventListener('click', () => document.querySelector('#model-dialog').showModal());
  document.querySelector('#present').addEventListener('click', () => present());
  for (const [kind, button] of Object.entries(sweepButtons)) {
    button.addEventListener('click', () => choice.form.reportValidity() && runSweep(kind));
  }
  document.querySelector('#atlas-run').addEventListener('click', () => showAtlas());
  // ticked while its atlas runs: join it again, asking it to run on
  atlasRunOn.addEventListener('change', () => atlasRunOn.checked && atlas.runs(request()) && showAtlas());
  document.querySelector('#atlas-close').addEventListener('click', () => {
    atlas.close();
    updateAddress();
  });
  atlas.addEventListener('open', (event) => openUnit(event.detail));
  document.querySelector('#sweep-close').addEventListener('click', () => {
    sweep.close();
    updateAddress();
  });
}

/** Show what the address asks for: a share link, a tour stop, or a choice (run at once if complete). */
async function start() {
  bindPage();
  showHealth();
  setInterval(showHealth, HEALTH_EVERY_MS);
  const wanted = urlstate.readLocation();
  view.setCoding(wanted.params.get('coding'));
  try {
    await settings.load();
    // A sweep varies settings whose values the panel knows.
    for (const button of Object.values(sweepButtons)) button.hidden = settings.root.hidden;
    const restorePins = () => Promise.all(PinBoard.remembered(wanted.params).map((token) => pins.add(token)));
    if (wanted.shareId) {
      await Promise.all([openShared(wanted.shareId), restorePins()]);
    } else {
      const settingsCorrection = settings.setFromQuery(wanted.params);
      startClip = urlstate.readStart(wanted.params);
      showStart();
      await choice.load(wanted);
      showModel();
      addressReady = true;
      showEstimate();
      restorePins();
      const tour = wanted.params.get('tour');
      const correction = urlstate.choiceCorrection(wanted.params, choice.value(), choice.layer.units)
        || (settingsCorrection && `The address asks for settings the panel cannot take. ${settingsCorrection} `
          + 'Press Visualise to run it.');
      if (tour) await present(tour, Number(wanted.params.get('stop')) || 0);
      else if (correction) {
        updateAddress(); // the address says what is shown, and the status line what was asked
        view.setStatus(correction, 'error');
      } else if (wanted.model && wanted.layer && wanted.unit !== null) await visualise(request());
      else updateAddress();
    }
    if (wanted.params.get('atlas') === '1') showAtlas();
    const sweepKind = wanted.params.get('sweep');
    if (Object.hasOwn(sweepButtons, sweepKind) && !settings.root.hidden) await runSweep(sweepKind);
  } catch (error) {
    view.setStatus(`Failed: ${error.message}`, 'error');
  }
}

start();
