// A link to a unit's visualisation, in the address format of the main page (urlstate.js).

import { choiceAddress } from './urlstate.js';

/** An <a> that opens the unit view of `model`/`layer`/`unit` with `text` as its label. */
export function unitLink(model, layer, unit, text = `${layer} #${unit}`) {
  const a = document.createElement('a');
  a.href = choiceAddress({ model, layer, unit });
  a.textContent = text;
  return a;
}
