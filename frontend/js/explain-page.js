// The Explain page: upload a video or pick a sample, then show the prediction per stream and fused,
// the space-time Grad-CAM strips and the layer's most active units, linked to their visualisations.
import { describeModel, getJSON, listModels } from './api.js';
import { element, unitLink } from './unit-link.js';
import { showExamples } from './unit-examples.js';

const $ = (id) => document.getElementById(id);

function fill(select, options, keepFirst = false) {
  if (!keepFirst) select.replaceChildren();
  else select.replaceChildren(select.options[0]);
  for (const [value, label] of options) select.append(new Option(label, value));
}

async function chooseModel(id) {
  const model = await describeModel(id);
  fill($('target'), model.labels.map((label, i) => [String(i), label]), true);
  fill($('layer'), model.layers.map((l) => [l.id, `${l.id} (${l.stream}, ${l.units})`]));
  const fusion = model.layers.slice(0, -1).filter((l) => l.stream === 'fusion');
  $('layer').value = (fusion.at(-1) ?? model.layers.at(-1)).id;
}

function showPrediction(top) {
  const box = $('prediction');
  box.replaceChildren();
  for (const [source, scores] of Object.entries(top)) {
    const column = element('div', '', 'prediction-source');
    column.append(element('h3', source === 'fused' ? 'fused' : `${source} alone`));
    const list = element('ol');
    for (const s of scores) list.append(element('li', `${s.label} ${(100 * s.probability).toFixed(1)}%`));
    column.append(list);
    box.append(column);
  }
}

function showResult(body) {
  showPrediction(body.top);
  $('target-label').textContent = body.target.label;
  const strips = $('strips');
  strips.replaceChildren();
  for (const stream of Object.keys(body.clip)) {
    const figure = element('figure');
    const input = element('img');
    input.src = body.clip[stream];
    input.alt = `${stream} input`;
    figure.append(input);
    if (body.gradcam[stream]) {
      const heat = element('img');
      heat.src = body.gradcam[stream];
      heat.alt = `${stream} Grad-CAM`;
      figure.append(heat, element('figcaption', `${stream}: input (top) and Grad-CAM (bottom)`));
    } else {
      figure.append(element('figcaption', `${stream}: input (this model gives no Grad-CAM for it)`));
    }
    strips.append(figure);
  }
  $('units-layer').textContent = body.layer;
  const units = $('units');
  units.replaceChildren();
  for (const u of body.units) {
    const item = element('li');
    const more = element('button', 'dataset examples', 'secondary');
    more.type = 'button';
    const examples = element('div', '', 'examples-out');
    more.addEventListener('click', () => showExamples(examples, body.model, body.layer, u.unit)
      .catch((err) => examples.replaceChildren(element('p', `Error: ${err.message}`))));
    item.append(unitLink(body.model, body.layer, u.unit, `unit ${u.unit}`), ` activation ${u.activation.toFixed(3)} `, more, examples);
    units.append(item);
  }
  $('result').hidden = false;
}

async function submit(event) {
  event.preventDefault();
  const form = new FormData();
  form.set('model', $('model').value);
  if ($('target').value) form.set('target', $('target').value);
  if ($('layer').value) form.set('layer', $('layer').value);
  const file = $('file').files[0];
  if (file) form.set('file', file);
  else if ($('sample').value) form.set('sample', $('sample').value);
  else { $('status').textContent = 'Choose a video or a sample.'; return; }
  $('status').textContent = 'Explaining…';
  const response = await fetch('/api/explain', { method: 'POST', body: form });
  const body = await response.json();
  if (!response.ok) {
    $('status').textContent = `Error: ${typeof body.detail === 'string' ? body.detail : JSON.stringify(body.detail)}`;
    return;
  }
  $('status').textContent = '';
  showResult(body);
}

async function start() {
  const [models, samples] = await Promise.all([listModels(), getJSON('/api/explain/samples')]);
  fill($('model'), models.map((m) => [m.id, m.title]));
  fill($('sample'), samples.map((s) => [s, s]), true);
  $('sample').value = samples[0] ?? '';
  $('model').addEventListener('change', () => chooseModel($('model').value));
  $('explain-form').addEventListener('submit', (e) => submit(e).catch((err) => { $('status').textContent = `Error: ${err.message}`; }));
  // `/explain?model=&sample=&target=` (links from the Insights page) preselects and runs at once
  const query = new URLSearchParams(location.search);
  if (models.some((m) => m.id === query.get('model'))) $('model').value = query.get('model');
  await chooseModel($('model').value);
  if (samples.includes(query.get('sample'))) {
    $('sample').value = query.get('sample');
    if ([...$('target').options].some((o) => o.value === query.get('target'))) $('target').value = query.get('target');
    $('explain-form').requestSubmit();
  }
}

start().catch((err) => { $('status').textContent = `Error: ${err.message}`; });
