// Small helpers that make page elements.

/** A new element with a class and text. */
export function element(tag, text = '', className = '') {
  const node = document.createElement(tag);
  if (text) node.textContent = text;
  if (className) node.className = className;
  return node;
}

const SVG = 'http://www.w3.org/2000/svg';

/** A new SVG element with attributes (and text). */
export function svgElement(tag, attributes = {}, text = '') {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text) node.textContent = text;
  return node;
}

/** Replace a select's options with `options` ([value, label] pairs), keeping its first one if asked. */
export function fillSelect(select, options, keepFirst = false) {
  select.replaceChildren(...(keepFirst ? [select.options[0]] : []));
  for (const [value, label] of options) select.append(new Option(label, value));
}
