// Unit tests of the frontend's pure modules, run by Node's own test runner (see test_js_modules.py).

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { errorMessage } from '../../../frontend/js/api.js';
import { atlasNote, unitStatusText } from '../../../frontend/js/atlas.js';
import { allStored, estimateBody, heavyQuestion } from '../../../frontend/js/confirm.js';
import { duration, formatNumber, paceSource, percent, queuedText, seconds } from '../../../frontend/js/format.js';
import { previewStrips, resultStrips } from '../../../frontend/js/media.js';
import { decodePin, encodePin } from '../../../frontend/js/pins.js';
import { allowed, layerChoicesUnset } from '../../../frontend/js/settings.js';
import { sweepColumns, sweptTemporalWeights } from '../../../frontend/js/sweep.js';
import { choiceAddress, choiceCorrection, explainAddress, readLocation, shareAddress, visualizationAddress } from '../../../frontend/js/urlstate.js';

test('temporal weights scale by the factor, stay in bounds, and a zero weight takes the factor', () => {
  assert.deepEqual(sweptTemporalWeights({ appearance: 2, motion: 50 }, 100), { appearance: 200, motion: 1000 });
  assert.deepEqual(sweptTemporalWeights({ appearance: 0, motion: 1 / 3 }, 0.1), { appearance: 0.1, motion: 0.0333 });
});

test('a speed sweep runs fast to slow and changes only the temporal weights', () => {
  const columns = sweepColumns('speed', { seed: 0, weights: { tv_time: { appearance: 1, motion: 1 } } });
  const motion = columns.map((c) => c.settings.weights.tv_time.motion);
  assert.deepEqual(motion, [...motion].sort((a, b) => a - b));
  assert.equal(new Set(motion).size, columns.length);
  assert.ok(columns.every((c) => Object.keys(c.settings).join() === 'weights'));
});

test('a seed sweep starts at the chosen seed and wraps within the valid range', () => {
  const seeds = sweepColumns('seeds', { seed: 2 ** 31 - 2, weights: {} }).map((c) => c.settings.seed);
  assert.deepEqual(seeds, [2 ** 31 - 2, 2 ** 31 - 1, 0, 1, 2]);
  assert.throws(() => sweepColumns('colours', {}), /no sweep/);
});

test('the address is read as a share id or a choice; a bad unit is ignored', () => {
  const shared = readLocation(new URL('http://host/v/0123abcd?coding=arrows'));
  assert.equal(shared.shareId, '0123abcd');
  assert.equal(shared.params.get('coding'), 'arrows');
  const choice = readLocation(new URL('http://host/?model=m&layer=fusion.conv&unit=7'));
  assert.deepEqual([choice.shareId, choice.model, choice.layer, choice.unit], [null, 'm', 'fusion.conv', 7]);
  assert.equal(readLocation(new URL('http://host/?unit=-1')).unit, null);
  assert.equal(readLocation(new URL('http://host/?unit=1e3')).unit, null);
});

test('result strips follow the flow coding and the model input shapes', () => {
  const visualization = { result: { media: { 'appearance.png': '/a', 'motion-arrows.png': '/m' } } };
  const model = { inputs: { appearance: { frames: 8, width: 64, height: 32 }, motion: { frames: 8, width: 64, height: 32 } } };
  assert.deepEqual(resultStrips(visualization, model, 'arrows'), {
    appearance: { src: '/a', frames: 8, aspect: 2 },
    motion: { src: '/m', frames: 8, aspect: 2 },
  });
  assert.deepEqual(Object.keys(resultStrips(visualization, model)), ['appearance']); // no direction strip
  const message = { frames: 4, width: 10, height: 5, previews: { motion: 'data:' } };
  assert.deepEqual(previewStrips(message), { motion: { src: 'data:', frames: 4, aspect: 2 } });
});

test('a share address keeps the request the server put in the link and adds how it is viewed', () => {
  const path = '/v/0123abcd?model=m&layer=fusion.conv&unit=3&steps=8';
  assert.equal(shareAddress(path), path);
  assert.equal(shareAddress(path, [['coding', 'arrows'], ['pins', 'a,b']]), `${path}&coding=arrows&pins=a%2Cb`);
  assert.equal(shareAddress('/v/0123abcd', [['atlas', '1']]), '/v/0123abcd?atlas=1');
});

test('a pin carries its request through the address, and an id alone still reads', () => {
  const request = { model: 'synth-conv-fusion', layer: 'fusion.conv', unit: 3, settings: { steps: 8, note: 'é' } };
  const token = encodePin('0123abcd', request);
  assert.match(token, /^0123abcd\.[A-Za-z0-9_-]+$/); // nothing the address needs to escape
  assert.deepEqual(decodePin(token), { id: '0123abcd', request });
  assert.deepEqual(decodePin('0123abcd'), { id: '0123abcd', request: null });
  assert.deepEqual(decodePin('0123abcd.%%%'), { id: '0123abcd', request: null });
});

test('numbers and durations read the same on every page', () => {
  assert.equal(formatNumber(0.2071), '0.207');
  assert.equal(formatNumber(0.0067), '6.70e-3');
  assert.equal(formatNumber(12345), '1.23e+4');
  assert.equal(formatNumber(0), '0.000');
  assert.equal(formatNumber(Number.NaN), '–');
  assert.equal(seconds(3712), '3.7 s');
  assert.equal(duration(400), '1 s');
  assert.equal(duration(75_000), '1 min 15 s');
  assert.equal(percent(0.6314), '63.1%');
});

test("an error answer's detail reads as one message, a sentence or the field errors", () => {
  assert.equal(errorMessage('unknown model'), 'unknown model');
  assert.equal(errorMessage([{ loc: ['body', 'unit'], msg: 'too big' }]), 'unit: too big');
  assert.equal(
    errorMessage([{ loc: ['start', 'example', 'example'], msg: 'Input should be less than or equal to 10000' }, { loc: [], msg: 'and one more' }]),
    'start.example: Input should be less than or equal to 10000; and one more',
  );
  assert.equal(errorMessage([{ unit: 3 }]), '[{"unit":3}]');  // not field errors: as sent
  assert.equal(errorMessage(undefined, 'Bad Request'), 'Bad Request');
  assert.equal(errorMessage(null), 'the server reported an error');
});

test('page addresses: a choice, a bare share link, the Explain page preset', () => {
  assert.equal(choiceAddress({ model: 'm', layer: 'fusion.conv', unit: 3 }, [['steps', '8']]), '/?model=m&layer=fusion.conv&unit=3&steps=8');
  assert.equal(visualizationAddress('0123abcd'), '/v/0123abcd');
  assert.equal(explainAddress({ model: 'm', sample: 'synth-box', target: 5 }), '/explain?model=m&sample=synth-box&target=5');
});

test('a queued run says its place and its wait, in full on the status line and short on a card', () => {
  assert.equal(queuedText({ position: 2, eta_s: 8.6 }), 'Queued: 2 ahead of you, about 9 s');
  assert.equal(queuedText({ position: 0, eta_s: 0 }), 'Queued: next in line, about 1 s');
  assert.equal(queuedText({ position: 0, eta_s: 75 }, true), 'queued: next, ~1 min 15 s');
  assert.equal(queuedText({ position: 12, eta_s: 3 }, true), 'queued: 12 ahead, ~3 s');
  const preparing = { position: 0, eta_s: 28, reason: "computing this model's eigenclips" };
  assert.equal(queuedText(preparing), "Before it starts: computing this model's eigenclips, about 28 s");
  assert.equal(queuedText(preparing, true), 'preparing, ~28 s');
});

test('heavy work is announced with how long it takes here and where the figure comes from', () => {
  assert.equal(
    heavyQuestion('This atlas (64 units)', { seconds: 199, source: 'estimated' }),
    "This atlas (64 units) takes about 3 min 19 s here, estimated from the layer's operations.",
  );
  assert.match(heavyQuestion('This sweep', { seconds: 40, source: 'measured' }), /about 40 s here, at the pace of this layer's last run here/);
  assert.notEqual(paceSource('measured'), paceSource('estimated'));
  // only what the estimate takes: a unit or a start clip would be refused
  assert.deepEqual(
    estimateBody({ model: 'm', layer: 'l', unit: 3, settings: { steps: 9 }, start: { example: 1 } }, { runs: 5 }),
    { model: 'm', layer: 'l', settings: { steps: 9 }, runs: 5, atlas: false },
  );
  assert.deepEqual(estimateBody({ model: 'm', layer: 'l' }, { atlas: true }), { model: 'm', layer: 'l', settings: {}, runs: 1, atlas: true });
  // one run of a unit from noise names it: a result stored here already costs nothing
  assert.deepEqual(estimateBody({ model: 'm', layer: 'l', unit: 0, settings: {} }), { model: 'm', layer: 'l', settings: {}, runs: 1, atlas: false, unit: 0 });
  assert.equal(estimateBody({ model: 'm', layer: 'l', unit: 3, start: { example: 1 } }).unit, undefined);
  assert.equal(allStored({ runs: 1, stored: 1 }), true);
  assert.equal(allStored({ runs: 10, stored: 9 }), false);
  assert.equal(allStored({ runs: 1, stored: 0 }), false);
});

test('the atlas says in one line what happens to it when the page goes away, and who may cancel it', () => {
  const running = { status: 'running', run_on: false, cancelled: false, yours: true };
  const theirs = { ...running, yours: false };
  assert.match(atlasNote(theirs, false), /^It stops a few seconds after nobody watches it\. Another browser started it: only that one can cancel it\.$/);
  assert.match(atlasNote({ ...theirs, run_on: true }, true), /^It keeps running when everyone leaves\. Another browser started it/);
  assert.match(atlasNote(running, false), /stops a few seconds after nobody watches it/);
  assert.match(atlasNote({ ...running, run_on: true }, true), /^It keeps running when you leave; Cancel atlas stops it/);
  assert.match(atlasNote({ ...running, run_on: true }, false), /someone asked it to/);
  assert.match(atlasNote({ status: 'done', run_on: false, cancelled: true }, false), /^Cancelled: the units it finished stay stored/);
  assert.equal(atlasNote({ status: 'done', run_on: true, cancelled: false }, true), '');
});

test('an atlas tile says queued, with its place where the server knows it, and computing only while it runs', () => {
  assert.deepEqual(unitStatusText({ status: 'queued', position: null }), ['queued', 'queued']);
  assert.deepEqual(unitStatusText({ status: 'queued', position: 0 }), ['queued: next', 'queued']);
  assert.deepEqual(unitStatusText({ status: 'queued', position: 3 }), ['queued: 3 ahead', 'queued']);
  assert.deepEqual(unitStatusText({ status: 'running', position: null }), ['computing…', 'busy']);
});

test("a shared link's settings show the layer's own param and freedom as unset, and keep any other", () => {
  const logits = { defaults: { param: 'pca', freedom: 1 }, start_defaults: { param: 'spectrum', freedom: 1 } };
  assert.deepEqual(layerChoicesUnset({ steps: 128, param: 'pca', freedom: 1 }, logits, false), { steps: 128 });
  assert.deepEqual(layerChoicesUnset({ param: 'spectrum', freedom: 1 }, logits, false), { param: 'spectrum', freedom: 1 });
  assert.deepEqual(layerChoicesUnset({ param: 'pca', freedom: 2 }, logits, false), { freedom: 2 });
  assert.deepEqual(layerChoicesUnset({ param: 'spectrum', freedom: 1 }, logits, true), {});
  assert.deepEqual(layerChoicesUnset({ param: 'pca' }, undefined, false), { param: 'pca' });
});

test('an address the picker could not follow is said, not run: a missing model, layer or unit', () => {
  const shown = { model: 'synth-conv-fusion', layer: 'logits', unit: 9 };
  const says = (query) => choiceCorrection(new URLSearchParams(query), shown, 10);
  assert.equal(says('model=synth-conv-fusion&layer=logits&unit=9'), '');
  assert.equal(says(''), '');
  assert.equal(says('model=synth-conv-fusion&layer=logits&unit=009'), '');  // the unit the page reads it as
  assert.match(says('model=nope&layer=logits&unit=9'), /^There is no model "nope" here: showing synth-conv-fusion\./);
  assert.match(says('model=synth-conv-fusion&layer=nope&unit=9'), /has no layer "nope": showing logits\./);
  assert.match(says('model=synth-conv-fusion&layer=logits&unit=999'), /no unit "999" \(its units are 0 to 9\): showing unit 9\./);
  assert.match(says('model=synth-conv-fusion&layer=logits&unit=abc'), /no unit "abc" \(a unit is a whole number\)/);
});

test('a setting\'s allowed values read as words, from the schema\'s bounds', () => {
  assert.equal(allowed({ type: 'integer', minimum: 1, maximum: 1024 }), 'a whole number from 1 to 1024');
  assert.equal(allowed({ type: 'number', exclusiveMinimum: 0, maximum: 1 }), 'a number, above 0 and at most 1');
  assert.equal(allowed({ type: 'number', minimum: 0 }), 'a number, at least 0');
  assert.equal(allowed({ enum: ['max', 'min'] }), 'one of max, min');
  assert.equal(allowed({ type: 'number' }), 'a number');
});
