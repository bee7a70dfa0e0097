// What the page says about a model wherever it shows one: a badge when its weights are random (its
// pictures and predictions then show the architecture, nothing learnt), its class names (indices
// where it has no trained classes), and its description and training card, one click away.

import { element } from './dom.js';
import { percent } from './format.js';

export const RANDOM_NOTE = 'Random weights: this model was never trained. Its units show what the architecture does '
  + 'with random numbers, not anything learnt, and its classes are numbers, not names.';

/** The "random weights" badge of a model description, or null for a trained model. */
export function randomBadge(model) {
  if (!model?.random_weights) return null;
  const badge = element('span', 'random weights', 'badge random');
  badge.title = RANDOM_NOTE;
  return badge;
}

/** The name of class `index`: its label, or "class N" for a model whose classes were never trained. */
export function className(model, index, label = model?.labels?.[index]) {
  return model?.random_weights || label === undefined ? `class ${index}` : label;
}

/** The model's description and training card as elements (for the "About this model" dialog). */
export function aboutModel(model) {
  const parts = [element('h2', model.title)];
  const badge = randomBadge(model);
  if (badge) parts.push(element('p', RANDOM_NOTE, 'caveat'));
  parts.push(element('p', model.description || 'No description was given for this model.'));
  const facts = element('dl', '', 'model-facts');
  const fact = (term, value) => facts.append(element('dt', term), element('dd', value));
  fact('id', model.id);
  fact('streams', model.streams.join(' + '));
  for (const [stream, input] of Object.entries(model.inputs ?? {})) {
    fact(`${stream} input`, `${input.frames} frames of ${input.width} × ${input.height} px`);
  }
  if (model.inputs?.motion) fact('optical flow', model.flow === 'tvl1' ? 'TV-L1 (as the model was trained)' : 'DIS (as the model was trained)');
  fact('classes', `${model.num_classes}${model.random_weights ? ' (untrained, shown by number)' : ''}`);
  const card = model.card;
  if (card?.training?.command) fact('trained by', card.training.command);
  if (card?.accuracy?.test?.all !== undefined) fact('test accuracy', percent(card.accuracy.test.all));
  if (card?.accuracy?.debiased?.all !== undefined) fact('accuracy, bias removed', percent(card.accuracy.debiased.all));
  parts.push(facts);
  return parts;
}
