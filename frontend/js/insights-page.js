// The Insights page: the paper's four findings measured on the built-in models (GET /api/insights),
// each with one plain sentence of what it shows, a plot with titled axes (Chart.js, vendored under
// /static/vendor/chart.js/ and loaded by insights.html as window.Chart) and links to the units.
import * as api from './api.js';
import { element } from './dom.js';
import { formatNumber, percent } from './format.js';
import { showExamples } from './unit-examples.js';
import { unitLink } from './unit-link.js';
import { explainAddress } from './urlstate.js';

/** The colour of each kind of layer, as on the rest of the page (app.css --appearance etc.). */
const STREAM_COLOURS = { appearance: '#ffb454', motion: '#6cb6ff', fusion: '#c792ea' };
const STREAM_NAMES = { appearance: 'appearance layers', motion: 'motion layers', fusion: 'fusion layers (both streams)' };
const FONT_PX = 13; // every text of a plot, on a phone too: the canvas is laid out in CSS pixels
const TICKS = '#c3c8d4';
const GRID = '#2a2f3a';

function chartDefaults() {
  const { Chart } = window;
  Chart.defaults.font.size = FONT_PX;
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.color = TICKS;
  Chart.defaults.borderColor = GRID;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.animation = false;
}

/** A y / x axis with a title (and its unit). */
const axis = (title, extra = {}) => ({ title: { display: true, text: title, font: { size: FONT_PX, weight: '600' } }, ticks: { font: { size: FONT_PX } }, ...extra });

/** A chart in its own box (the box sets the height; the width follows the page). */
function plot(config, label) {
  const box = element('div', '', 'plot');
  const canvas = element('canvas');
  canvas.setAttribute('role', 'img');
  canvas.setAttribute('aria-label', label);
  box.append(canvas);
  box.chart = () => new window.Chart(canvas, config); // drawn once the box is on the page
  return box;
}

/** Layers along the depth of the net: a stream's layers count from its input, fusion layers follow
 *  the deepest stream layer. Returns the axis labels and, per kind of layer, its values by depth. */
export function depthSeries(layers, key) {
  const rank = new Map();
  const count = { appearance: 0, motion: 0 };
  for (const layer of layers) if (layer.stream !== 'fusion') rank.set(layer.layer, count[layer.stream]++);
  let depth = Math.max(count.appearance, count.motion);
  for (const layer of layers) if (layer.stream === 'fusion') rank.set(layer.layer, depth++);
  const names = Array.from({ length: depth }, () => []);
  for (const layer of layers) {
    const prefix = `${layer.stream}.`; // "appearance.conv1" and "motion.conv1" share a column as "conv1"
    const short = layer.stream !== 'fusion' && layer.layer.startsWith(prefix) ? layer.layer.slice(prefix.length) : layer.layer;
    if (!names[rank.get(layer.layer)].includes(short)) names[rank.get(layer.layer)].push(short);
  }
  const series = {};
  for (const layer of layers) {
    series[layer.stream] ??= Array(depth).fill(null);
    series[layer.stream][rank.get(layer.layer)] = layer[key];
  }
  return { labels: names.map((n) => n.join(' / ')), series };
}

function depthPlot(layers, key, yTitle, label) {
  const { labels, series } = depthSeries(layers, key);
  const datasets = Object.entries(series).map(([stream, data]) => ({
    label: STREAM_NAMES[stream], data, borderColor: STREAM_COLOURS[stream], backgroundColor: STREAM_COLOURS[stream],
    borderWidth: 2.5, pointRadius: 4, spanGaps: true, stream,
  }));
  return plot({
    type: 'line',
    data: { labels, datasets },
    options: {
      scales: { x: axis('layer, from the input (left) to the class scores (right)'), y: axis(yTitle, { min: 0, max: 1 }) },
      plugins: { legend: { labels: { font: { size: FONT_PX } } } },
    },
  }, label);
}

function barPlot(labels, values, colours, xTitle, yTitle, label, extra = {}) {
  return plot({
    type: 'bar',
    data: { labels, datasets: [{ data: values, backgroundColor: colours }] },
    options: { scales: { x: axis(xTitle), y: axis(yTitle, extra) }, plugins: { legend: { display: false } } },
  }, label);
}

function unitList(modelId, layer, units) {
  const span = element('span');
  units.forEach((unit, i) => span.append(i ? ', ' : '', unitLink(modelId, layer, unit, `#${unit}`)));
  if (!units.length) span.append('none');
  return span;
}

const sentence = (text) => element('p', text, 'finding-summary');
const round = (value) => Number(value).toFixed(2);

function conjunctionFinding(modelId, measured) {
  const section = element('section', '', 'finding');
  section.append(element('h3', '1. Cross-stream fusion: a particular appearance AND a particular motion'));
  const fusion = measured.layers.filter((layer) => 'conjunction' in layer);
  const strongest = fusion.reduce((best, layer) => (layer.conjunction > best.conjunction ? layer : best), fusion[0]);
  const [topScore, topLayer, topUnit] = fusion.flatMap((layer) => layer.cross_stream.conjunction.map((score, unit) => [score, layer.layer, unit]))
    .reduce((best, item) => (item[0] > best[0] ? item : best), [-1, '', 0]);
  section.append(sentence(strongest.conjunction > 0.05
    ? `Its fusion units combine the streams: on average ${round(strongest.conjunction)} of what drives a unit of ${strongest.layer} `
      + `needs both streams at once, and single units come close to a pure AND (${topLayer} #${topUnit}: ${round(topScore)}).`
    : 'Its fusion layers only add up what each stream says: no unit needs both streams at once (conjunction 0).'));
  section.append(element('p', 'Conjunction: 1 when a unit responds only if the appearance and the motion show their part together '
    + '(a pure AND), 0 when one stream alone, or the sum of the two, drives it (measured by removing each stream from the unit\'s top clips).', 'hint'));
  section.append(barPlot(fusion.map((layer) => layer.layer), fusion.map((layer) => layer.conjunction), STREAM_COLOURS.fusion,
    'fusion layer', 'conjunction (0 to 1)', `mean conjunction of each fusion layer of ${measured.title}`, { min: 0, max: 1 }));
  const more = element('p');
  more.append(`The designed pair, whose class is shirt colour XOR direction and so needs both streams: `,
    Object.entries(measured.pair).map(([label, value]) => `${label} ${round(value)}`).join(', '), '. ');
  // the most conjunctive units, of those that are at all (a late-fusion net has none to list)
  const top = fusion.map((layer) => [layer, layer.cross_stream.conjunction.map((value, unit) => [value, unit])
    .filter(([value]) => value > 0).sort((a, b) => b[0] - a[0]).slice(0, 3).map(([, unit]) => unit)])
    .filter(([, units]) => units.length);
  if (!top.length) more.append('No unit needs both streams at once.');
  else more.append('Most conjunctive units: ');
  top.forEach(([layer, units], index) => {
    more.append(`${layer.layer} `, unitList(modelId, layer.layer, units), index < top.length - 1 ? '; ' : '.');
  });
  section.append(more);
  return section;
}

function selectivityFinding(modelId, measured) {
  const section = element('section', '', 'finding');
  section.append(element('h3', '2. Class-specific and generic units'));
  const layers = measured.layers;
  const streams = layers.filter((layer) => layer.stream !== 'fusion');
  const last = layers.at(-1);
  // said from the figures, not assumed: which way the stream layers lean, and whether the class scores are more specific
  const count = (key) => streams.reduce((sum, layer) => sum + layer[key], 0);
  const [specific, generic] = [count('specific_count'), count('generic_count')];
  const lean = generic > specific ? 'more of their units are generic than specific' : 'more of their units are specific than generic';
  const highest = Math.max(...streams.map((l) => l.selectivity));
  const towards = last.selectivity > highest
    ? `towards the class scores units become more specific (${last.layer}: ${round(last.selectivity)})`
    : `the class scores are no more specific (${last.layer}: ${round(last.selectivity)})`;
  section.append(sentence(`In the stream layers ${lean} (${specific} specific, ${generic} generic; mean selectivity `
    + `${round(Math.min(...streams.map((l) => l.selectivity)))} to ${round(highest)} a layer); ${towards}.`));
  section.append(element('p', 'Selectivity index of a unit: 0 when it responds alike to every class, 1 when to one class only '
    + '(specific at 0.6 or more, generic at 0.2 or less), averaged over the layer.', 'hint'));
  section.append(depthPlot(layers, 'selectivity', 'selectivity (0 to 1)', `selectivity over depth of ${measured.title}`));
  const list = element('ul', '', 'layer-list');
  for (const layer of layers) {
    const item = element('li', `${layer.layer}: ${layer.specific_count} specific`);
    const some = (units) => (units.length ? [' (', unitList(modelId, layer.layer, units.slice(0, 4)), ')'] : []);
    item.append(...some(layer.specific), `, ${layer.generic_count} generic`, ...some(layer.generic));
    list.append(item);
  }
  section.append(list);
  return section;
}

function speedFinding(measured, speeds) {
  const section = element('section', '', 'finding');
  section.append(element('h3', '3. Deeper layers care less about speed'));
  const motion = measured.layers.filter((layer) => layer.stream === 'motion' && !layer.layer.includes('head'));
  const firstFusion = measured.layers.find((layer) => layer.stream === 'fusion');
  const deep = firstFusion && firstFusion.layer !== 'logits' ? firstFusion : motion.at(-1);
  section.append(sentence(`Along the motion path invariance to speed rises from ${round(motion[0].speed_invariance)} (${motion[0].layer}) `
    + `to ${round(deep.speed_invariance)} (${deep.layer}): deeper units respond to a motion whether it is slow or fast. `
    + 'Appearance units see one frame at a time, so speed hardly changes them.'));
  section.append(element('p', `Each unit's top test clips replayed at ${speeds.map((s) => `${s}×`).join(', ')}: invariance is its mean `
    + 'response over the speeds divided by its largest (1: the same at every speed, 0.2: one speed only), averaged over the layer.', 'hint'));
  section.append(depthPlot(measured.layers, 'speed_invariance', 'speed invariance (0 to 1)', `speed invariance over depth of ${measured.title}`));
  return section;
}

function biasFinding(modelId, measured) {
  const { bias } = measured;
  const section = element('section', '', 'finding');
  section.append(element('h3', `4. A bias in the training data explains a failure: "${bias.class}"`));
  section.append(sentence(`"${bias.class}" is right on ${percent(bias.accuracy_test)} of the test clips and on ${percent(bias.accuracy_debiased)} `
    + `once its background no longer gives it away: its score comes from the appearance stream (${bias.logit_appearance_only.toFixed(1)} `
    + `alone, ${bias.logit_both.toFixed(1)} with both streams), not from the motion of boxing (${bias.logit_motion_only.toFixed(1)}).`));
  const inputs = ['both streams', 'appearance only', 'motion only', 'neither'];
  const values = [bias.logit_both, bias.logit_appearance_only, bias.logit_motion_only, bias.logit_neither];
  const colours = [STREAM_COLOURS.fusion, STREAM_COLOURS.appearance, STREAM_COLOURS.motion, '#9097a6'];
  section.append(barPlot(inputs, values, colours, 'what the net sees of its top clips',
    'class score (logit)', `the ${bias.class} class score with each stream removed, ${measured.title}`));
  const links = element('p', 'See what the class has learnt: ');
  const explainBias = element('a', `a ${bias.class} clip explained (Grad-CAM)`);
  explainBias.href = explainAddress({ model: modelId, sample: `synth-${bias.class}`, target: bias.unit });
  links.append(unitLink(modelId, 'logits', bias.unit, `the ${bias.class} class visualisation`), ' and ', explainBias, '.');
  section.append(links);
  return section;
}

/** Bars of one unit's response at each replay speed, scaled to its peak. */
function tuningPlot(speeds, responses) {
  const peak = Math.max(...responses, 1e-12);
  return barPlot(speeds.map((speed) => `${speed}×`), responses.map((r) => r / peak), STREAM_COLOURS.motion,
    'replay speed of its top clips', 'response (1 = peak)', 'the unit\'s response at each replay speed', { min: 0, max: 1 });
}

/** What the measurements say about one unit: its class selectivity and its speed tuning. */
function unitSummary(measured, labels, speeds, layerId, unit) {
  const layer = measured.layers.find((l) => l.layer === layerId);
  const box = element('div', '', 'unit-summary');
  if (!layer || unit >= layer.units) return box;
  box.append(element('p', `Selectivity ${formatNumber(layer.unit_selectivity[unit])} (prefers "${labels[layer.preferred[unit]]}"); `
    + 'its response on its top clips replayed at each speed:'));
  const tuning = tuningPlot(speeds, layer.speed_responses[unit]);
  tuning.classList.add('tuning');
  box.append(tuning);
  return box;
}

/** Layer and unit fields that show the unit's dataset examples; starts on the most conjunctive fusion unit. */
function examplesPicker(modelId, measured, labels, speeds) {
  const box = element('div', '', 'examples-picker');
  const layer = element('select');
  layer.setAttribute('aria-label', 'Layer');
  for (const l of measured.layers) layer.append(new Option(`${l.layer} (${l.units})`, l.layer));
  const unit = element('input');
  Object.assign(unit, { type: 'number', min: '0', step: '1', value: '0' });
  unit.setAttribute('aria-label', 'Unit');
  const show = element('button', 'Show examples', 'secondary');
  show.type = 'button';
  const out = element('div', '', 'examples-out');
  const fusion = measured.layers.find((l) => 'conjunction' in l);
  if (fusion) {
    layer.value = fusion.layer;
    const scores = fusion.cross_stream.conjunction;
    unit.value = String(scores.indexOf(Math.max(...scores)));
  }
  const summary = element('div', '', 'unit-summary-slot');
  show.addEventListener('click', () => {
    const drawn = unitSummary(measured, labels, speeds, layer.value, Number(unit.value));
    summary.replaceChildren(drawn);
    drawn.querySelector('.plot')?.chart();
    showExamples(out, modelId, layer.value, Number(unit.value))
      .catch((error) => out.replaceChildren(element('p', `Error: ${error.message}`)));
  });
  box.append(layer, unit, show, summary, out);
  return box;
}

function modelSection(modelId, measured, labels, speeds) {
  const section = element('section', '', 'insight-model');
  section.append(element('h2', measured.title));
  if (measured.stale) section.append(element('p', 'The weights changed since these numbers were measured: recompute them (docs/insights.md).', 'caveat'));
  section.append(conjunctionFinding(modelId, measured), selectivityFinding(modelId, measured), speedFinding(measured, speeds),
    biasFinding(modelId, measured));
  const picker = element('section', '', 'finding');
  picker.append(element('h3', 'Any unit: its selectivity, speed tuning and dataset examples'), examplesPicker(modelId, measured, labels, speeds));
  section.append(picker);
  return section;
}

async function start() {
  chartDefaults();
  const results = await api.insights();
  const root = document.getElementById('insights');
  for (const [id, measured] of Object.entries(results.models)) root.append(modelSection(id, measured, results.labels, results.speeds));
  for (const box of root.querySelectorAll('.plot')) box.chart();
  document.getElementById('status').textContent = '';
}

start().catch((error) => { document.getElementById('status').textContent = error.message; });
