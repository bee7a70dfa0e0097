// The Explain page: upload a video or pick a sample, then show the prediction per stream and fused,
// the space-time Grad-CAM strips and the layer's most active units, linked to their visualisations.
import * as api from './api.js';
import { element, fillSelect } from './dom.js';
import { percent } from './format.js';
import { aboutModel, className, RANDOM_NOTE, randomBadge } from './model-info.js';
import { showExamples } from './unit-examples.js';
import { accentuateLink, unitLink } from './unit-link.js';

const $ = (id) => document.getElementById(id);

let chosen = null; // the description of the chosen model

async function chooseModel(id) {
  const model = (chosen = await api.describeModel(id));
  $('model-about').textContent = model.description ?? '';
  $('model-badge').replaceChildren(...[randomBadge(model)].filter(Boolean));
  $('model').title = model.title;
  document.querySelector('#model-dialog .model-about').replaceChildren(...aboutModel(model));
  fillSelect($('target'), model.labels.map((label, index) => [String(index), className(model, index, label)]), true);
  fillSelect($('layer'), model.layers.map((layer) => [layer.id, `${layer.id} (${layer.stream}, ${layer.units})`]));
  const fusion = model.layers.slice(0, -1).filter((layer) => layer.stream === 'fusion');
  $('layer').value = (fusion.at(-1) ?? model.layers.at(-1)).id;
}

function showPrediction(top) {
  const box = $('prediction');
  box.replaceChildren();
  for (const [source, scores] of Object.entries(top)) {
    const column = element('div', '', 'prediction-source');
    column.append(element('h3', source === 'fused' ? 'fused' : `${source} alone`));
    const list = element('ol');
    for (const score of scores) list.append(element('li', `${className(chosen, score.index, score.label)} ${percent(score.probability)}`));
    column.append(list);
    box.append(column);
  }
}

/** What the prediction may not mean: a clip unlike the training data, or an upload to a model that
 *  knows only the synthetic world. */
function showCaveats(body, uploaded) {
  const caveats = [];
  const { familiarity } = body;
  if (chosen?.random_weights) {
    const box = element('p', '', 'caveat random-weights');
    box.append(element('strong', 'Random weights. '), `${RANDOM_NOTE} Its prediction and Grad-CAM mean nothing.`);
    caveats.push(box);
  }
  if (familiarity?.measured && familiarity.familiar === false) {
    const box = element('p', '', 'caveat familiarity');
    box.append(element('strong', 'Not like the training data. '), familiarity.detail);
    caveats.push(box);
  } else if (familiarity && !familiarity.measured) {
    caveats.push(element('p', `Not checked against the training data: ${familiarity.detail}`, 'hint familiarity'));
  }
  if (uploaded && chosen?.dataset_examples) {
    const box = element('p', '', 'caveat synthetic-world');
    box.append(element('strong', 'A model of a synthetic world. '), `${chosen.title} was trained only on cartoon actors on `
      + 'textured backgrounds (the synthetic action world); on real footage its classes are guesses, however sure they look.');
    caveats.push(box);
  }
  $('caveats').replaceChildren(...caveats);
}

/** `start` is the clip as a visualisation may start from it: {upload: id} or {sample: name}. */
function showResult(body, uploaded, start) {
  showCaveats(body, uploaded);
  showPrediction(body.top);
  $('target-label').textContent = className(chosen, body.target.index, body.target.label);
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
  for (const top of body.units) {
    const item = element('li');
    item.append(unitLink(body.model, body.layer, top.unit, `unit ${top.unit}`), ` activation ${top.activation.toFixed(3)} `);
    if (start) item.append(accentuateLink(body.model, body.layer, top.unit, start), ' ');
    if (chosen?.id === body.model && chosen.dataset_examples) { // only the synthetic world has a dataset here
      const more = element('button', 'dataset examples', 'secondary');
      more.type = 'button';
      const examples = element('div', '', 'examples-out');
      more.addEventListener('click', () => showExamples(examples, body.model, body.layer, top.unit)
        .catch((error) => examples.replaceChildren(element('p', `Error: ${error.message}`))));
      item.append(more, examples);
    }
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
  $('result').hidden = true; // an error must not sit above the previous clip's result
  $('status').textContent = 'Explaining…';
  const body = await api.explain(form, ({ done, total }) => {
    const estimator = chosen?.flow === 'tvl1' ? 'TV-L1' : 'DIS';
    $('status').textContent = `Explaining… optical flow (${estimator}, as the model was trained): frame ${done} / ${total}`;
  });
  $('status').textContent = '';
  const start = file ? (body.clip_id ? { upload: body.clip_id } : null) : { sample: form.get('sample') };
  showResult(body, Boolean(file), start);
}

async function start() {
  const [models, samples] = await Promise.all([api.listModels(), api.explainSamples()]);
  fillSelect($('model'), models.map((model) => [model.id, model.title]));
  fillSelect($('sample'), samples.map((sample) => [sample, sample]), true);
  $('sample').value = samples[0] ?? '';
  $('model').addEventListener('change', () => chooseModel($('model').value));
  $('about-model').addEventListener('click', () => $('model-dialog').showModal());
  // one source at a time: a chosen file clears the sample list, a chosen sample the file
  $('file').addEventListener('change', () => { if ($('file').files.length) $('sample').value = ''; });
  $('sample').addEventListener('change', () => { if ($('sample').value) $('file').value = ''; });
  $('explain-form').addEventListener('submit', (event) => submit(event).catch((error) => { $('status').textContent = `Error: ${error.message}`; }));
  // `/explain?model=&sample=&target=` (links from the Insights page) preselects and runs at once
  const query = new URLSearchParams(location.search);
  if (models.some((model) => model.id === query.get('model'))) $('model').value = query.get('model');
  await chooseModel($('model').value);
  if (samples.includes(query.get('sample'))) {
    $('sample').value = query.get('sample');
    if ([...$('target').options].some((option) => option.value === query.get('target'))) $('target').value = query.get('target');
    $('explain-form').requestSubmit();
  }
}

start().catch((error) => { $('status').textContent = `Error: ${error.message}`; });
