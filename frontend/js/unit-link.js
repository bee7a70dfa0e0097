// A link to a unit's visualisation, in the address format of the main page (urlstate.js).

import { choiceAddress, startEntries } from './urlstate.js';

/** An <a> that opens the unit view of `model`/`layer`/`unit` with `text` as its label. */
export function unitLink(model, layer, unit, text = `${layer} #${unit}`) {
  const a = document.createElement('a');
  a.href = choiceAddress({ model, layer, unit });
  a.textContent = text;
  return a;
}

/** An <a> that visualises the unit starting from a real clip (`start`, as the server's request takes
 * it): what in that clip drives the unit (feature accentuation), with the address entries `settings`. */
export function accentuateLink(model, layer, unit, start, settings = []) {
  const a = document.createElement('a');
  a.href = choiceAddress({ model, layer, unit }, [...settings, ...startEntries(start)]);
  a.textContent = 'accentuate';
  a.className = 'accentuate';
  a.title = 'visualise this unit starting from this clip: what in it drives the unit';
  return a;
}
