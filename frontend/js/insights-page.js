// The Insights page: the four findings per built-in model, from GET /api/insights, with plots over
// depth and links to the units that show them.
import * as api from './api.js';
import { element, svgElement } from './dom.js';
import { showExamples } from './unit-examples.js';
import { unitLink } from './unit-link.js';
import { explainAddress } from './urlstate.js';

/** A line plot over depth: `columns` are the x labels, `series` maps a name to one value (0..1, or
 *  null where that path has no layer) per column. */
function depthPlot(columns, series) {
  const width = 640, height = 200, left = 40, right = 60, bottom = 70, top = 10;
  const svg = svgElement('svg', { viewBox: `0 0 ${width} ${height}`, class: 'depth-plot' });
  const x = (i) => left + (i * (width - left - right)) / Math.max(columns.length - 1, 1);
  const y = (v) => top + (1 - v) * (height - top - bottom);
  const add = (tag, attributes, text) => svg.append(svgElement(tag, attributes, text));
  for (const v of [0, 0.5, 1]) add('text', { x: 4, y: y(v) + 4, 'font-size': 10 }, v.toFixed(1));
  columns.forEach((name, i) => add('text', { x: x(i), y: height - bottom + 12, 'font-size': 9, transform: `rotate(25 ${x(i)} ${height - bottom + 12})` }, name));
  const colours = ['#c0392b', '#2471a3', '#229954'];
  Object.entries(series).forEach(([name, values], k) => {
    const style = `stroke: ${colours[k % colours.length]}`;
    const points = values.map((v, i) => (v === null ? null : `${x(i)},${y(v)}`)).filter(Boolean).join(' ');
    add('polyline', { points, fill: 'none', style, 'stroke-width': 2 });
    add('text', { x: left + 130 * k, y: height - 6, style: `fill: ${colours[k % colours.length]}`, 'font-size': 11 }, name);
  });
  return svg;
}

/** Depth of each layer on its path from the input: a stream's layers count from 0, fusion layers
 *  continue after the deepest stream layer. Returns the column labels and a per-path series maker. */
function depthColumns(layers) {
  const streams = ['appearance', 'motion'];
  const rank = new Map();
  const count = { appearance: 0, motion: 0 };
  for (const l of layers) if (l.stream !== 'fusion') rank.set(l.layer, count[l.stream]++);
  let next = Math.max(count.appearance, count.motion);
  for (const l of layers) if (l.stream === 'fusion') rank.set(l.layer, next++);
  const columns = Array.from({ length: next }, () => []);
  for (const l of layers) {
    const short = l.stream !== 'fusion' && l.layer.startsWith(`${l.stream}.`) ? l.layer.slice(l.stream.length + 1) : l.layer;
    if (!columns[rank.get(l.layer)].includes(short)) columns[rank.get(l.layer)].push(short);
  }
  const series = (key) => Object.fromEntries(streams.map((s) => {
    const values = Array(next).fill(null);
    for (const l of layers) if (l.stream === s || l.stream === 'fusion') values[rank.get(l.layer)] = l[key];
    return [`${s} path`, values];
  }));
  return { columns: columns.map((c) => c.join(' / ')), series };
}

function unitList(modelId, layer, units) {
  const span = element('span');
  units.forEach((u, i) => span.append(i ? ', ' : '', unitLink(modelId, layer, u, `#${u}`)));
  if (!units.length) span.append('none');
  return span;
}

/** Bars of one unit's response at each replay speed, scaled to its peak. */
function tuningBars(speeds, responses) {
  const width = 260, height = 90, bar = width / speeds.length;
  const svg = svgElement('svg', { viewBox: `0 0 ${width} ${height}`, class: 'tuning-bars' });
  const peak = Math.max(...responses, 1e-12);
  speeds.forEach((speed, i) => {
    const h = (responses[i] / peak) * (height - 20);
    svg.append(
      svgElement('rect', { x: i * bar + 4, y: height - 14 - h, width: bar - 8, height: h }),
      svgElement('text', { x: i * bar + bar / 2, y: height - 2, 'text-anchor': 'middle', 'font-size': 10 }, `${speed}x`),
    );
  });
  return svg;
}

/** What the measurements say about one unit: its class selectivity and its speed tuning. */
function unitSummary(measured, labels, speeds, layerId, unit) {
  const layer = measured.layers.find((l) => l.layer === layerId);
  const box = element('div', '', 'unit-summary');
  if (!layer || unit >= layer.units) return box;
  box.append(element('p', `Selectivity ${layer.unit_selectivity[unit].toFixed(2)} (prefers "${labels[layer.preferred[unit]]}"); `
    + 'response on its top clips replayed at each speed:'));
  box.append(tuningBars(speeds, layer.speed_responses[unit]));
  return box;
}

/** Layer and unit fields that show the unit's dataset examples; starts on the most conjunctive fusion unit. */
function examplesPicker(modelId, measured, labels, speeds) {
  const box = element('div', '', 'examples-picker');
  const layer = element('select');
  for (const l of measured.layers) layer.append(new Option(`${l.layer} (${l.units})`, l.layer));
  const unit = element('input');
  Object.assign(unit, { type: 'number', min: '0', step: '1', value: '0' });
  const show = element('button', 'Show examples', 'secondary');
  show.type = 'button';
  const out = element('div', '', 'examples-out');
  const fusion = measured.layers.filter((l) => 'conjunction' in l).at(0);
  if (fusion) {
    layer.value = fusion.layer;
    const c = fusion.cross_stream.conjunction;
    unit.value = String(c.indexOf(Math.max(...c)));
  }
  const summary = element('div');
  show.addEventListener('click', () => {
    summary.replaceChildren(unitSummary(measured, labels, speeds, layer.value, Number(unit.value)));
    showExamples(out, modelId, layer.value, Number(unit.value))
      .catch((error) => out.replaceChildren(element('p', `Error: ${error.message}`)));
  });
  box.append(layer, unit, show, summary, out);
  return box;
}

function modelSection(modelId, measured, labels, speeds) {
  const section = element('section', '', 'insight-model');
  section.append(element('h2', `${measured.title}${measured.stale ? ' (weights changed since these numbers: recompute)' : ''}`));
  const depth = depthColumns(measured.layers);

  section.append(element('h3', '1. Cross-stream fusion: conjunction of appearance AND motion'));
  const fusion = measured.layers.filter((l) => 'conjunction' in l);
  const p1 = element('p');
  p1.append(fusion.map((l) => `${l.layer}: ${l.conjunction.toFixed(3)}`).join(' · '),
    `. Designed pair logits (class = shirt colour XOR direction): `,
    Object.entries(measured.pair).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(', '), '. Most conjunctive units: ');
  for (const l of fusion) {
    const order = l.cross_stream.conjunction.map((c, u) => [c, u]).sort((a, b) => b[0] - a[0]).slice(0, 3).map(([, u]) => u);
    p1.append(`${l.layer} `, unitList(modelId, l.layer, order), '; ');
  }
  section.append(p1);

  section.append(element('h3', '2. Class-specific and generic units (selectivity index over depth)'));
  const list = element('ul');
  for (const l of measured.layers) {
    const item = element('li', `${l.layer}: mean ${l.selectivity.toFixed(3)}; ${l.specific_count} specific `);
    item.append(unitList(modelId, l.layer, l.specific.slice(0, 4)), `, ${l.generic_count} generic `, unitList(modelId, l.layer, l.generic.slice(0, 4)));
    list.append(item);
  }
  section.append(list);
  section.append(depthPlot(depth.columns, depth.series('selectivity')));

  section.append(element('h3', '3. Invariance to speed over depth (clips replayed at 0.25x to 4x)'));
  section.append(depthPlot(depth.columns, depth.series('speed_invariance')));

  section.append(element('h3', `4. The designed bias: "${measured.bias.class}"`));
  const p4 = element('p', `Accuracy ${(100 * measured.bias.accuracy_test).toFixed(1)}% on the test clips, `
    + `${(100 * measured.bias.accuracy_debiased).toFixed(1)}% once its background no longer gives it away. `
    + `Its logit: ${measured.bias.logit_both.toFixed(2)} with both streams, ${measured.bias.logit_appearance_only.toFixed(2)} from appearance alone, `
    + `${measured.bias.logit_motion_only.toFixed(2)} from motion alone, ${measured.bias.logit_neither.toFixed(2)} from neither. See what the class has learnt: `);
  const explainBias = element('a', `a ${measured.bias.class} clip explained (Grad-CAM)`);
  explainBias.href = explainAddress({ model: modelId, sample: `synth-${measured.bias.class}`, target: measured.bias.unit });
  p4.append(unitLink(modelId, 'logits', measured.bias.unit, `the ${measured.bias.class} class visualisation`), ' and ', explainBias, '.');
  section.append(p4);

  section.append(element('h3', 'Any unit: its selectivity, speed tuning and dataset examples'));
  section.append(examplesPicker(modelId, measured, labels, speeds));
  return section;
}

async function start() {
  const results = await api.insights();
  const root = document.getElementById('insights');
  for (const [id, measured] of Object.entries(results.models)) root.append(modelSection(id, measured, results.labels, results.speeds));
  document.getElementById('status').textContent = '';
}

start().catch((error) => { document.getElementById('status').textContent = error.message; });
