// A link to a unit's visualisation, in the address format of the main page (urlstate.js).

/** An <a> that opens the unit view of `model`/`layer`/`unit` with `text` as its label. */
export function unitLink(model, layer, unit, text = `${layer} #${unit}`) {
  const a = document.createElement('a');
  a.href = `/?${new URLSearchParams({ model, layer, unit: String(unit) })}`;
  a.textContent = text;
  return a;
}

/** A new element with a class and text. */
export function element(tag, text = '', className = '') {
  const node = document.createElement(tag);
  if (text) node.textContent = text;
  if (className) node.className = className;
  return node;
}
