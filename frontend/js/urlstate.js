// The page's address mirrors what it shows: `/?model=&layer=&unit=&<settings>` for a choice,
// `/v/{id}?model=&layer=&unit=&<settings>` for a finished visualisation (its share link, which
// carries its request so that a server that never saw the id can compute it again).

/** What the current address asks for: a share id, or a (possibly partial) choice and its query. */
export function readLocation(loc = location) {
  const match = loc.pathname.match(/^\/v\/([^/]+)\/?$/);
  const params = new URLSearchParams(loc.search);
  const unit = params.get('unit');
  return {
    shareId: match ? decodeURIComponent(match[1]) : null,
    model: params.get('model'),
    layer: params.get('layer'),
    unit: unit !== null && /^\d+$/.test(unit) ? Number(unit) : null,
    params,
  };
}

/** What an address asked for that the page could not show, as one sentence ('' when it showed it all):
 * `params` the address's query, `shown` the choice the picker fell back to ({model, layer, unit}), and
 * `units` the shown layer's unit count. A class must not be shown another unit's picture unawares. */
export function choiceCorrection(params, shown, units) {
  const asked = { model: params.get('model'), layer: params.get('layer'), unit: params.get('unit') };
  if (asked.model !== null && asked.model !== shown.model) {
    return `There is no model ${JSON.stringify(asked.model)} here: showing ${shown.model}. Press Visualise to run it.`;
  }
  if (asked.layer !== null && asked.layer !== shown.layer) {
    return `Model ${shown.model} has no layer ${JSON.stringify(asked.layer)}: showing ${shown.layer}. Press Visualise to run it.`;
  }
  if (asked.unit !== null && !(/^\d+$/.test(asked.unit) && Number(asked.unit) === shown.unit)) {  // "007" is unit 7
    const why = /^\d+$/.test(asked.unit) ? `its units are 0 to ${units - 1}` : 'a unit is a whole number';
    return `Layer ${shown.layer} has no unit ${JSON.stringify(asked.unit)} (${why}): showing unit ${shown.unit}. `
      + 'Press Visualise to run it.';
  }
  return '';
}

/** The kinds of real clip a visualisation may start from (the server's analysis.starts). */
export const START_KINDS = ['example', 'sample', 'upload'];

/** The start clip an address names as `start.<kind>=<value>` ({example: 3}, {sample: 'synth-walk'}...), or null. */
export function readStart(params) {
  for (const kind of START_KINDS) {
    const value = params.get(`start.${kind}`);
    // an example is a clip number; anything else goes to the server as written, which says what is wrong
    if (value !== null) return { [kind]: kind === 'example' && /^\d+$/.test(value) ? Number(value) : value };
  }
  return null;
}

/** The address entries of a start clip (none for null). */
export function startEntries(start) {
  return Object.entries(start ?? {}).map(([kind, value]) => [`start.${kind}`, String(value)]);
}

/** The address of a choice: model, layer, unit, then `extra` entries (the changed settings). */
export function choiceAddress({ model, layer, unit }, extra = []) {
  const params = new URLSearchParams({ model, layer, unit: String(unit) });
  for (const [key, value] of extra) params.set(key, value);
  return `/?${params}`;
}

/** Show a choice in the address (see choiceAddress). */
export function writeChoice(choice, extra = []) {
  history.replaceState(null, '', choiceAddress(choice, extra));
}

/** The share link of a visualisation known by its id only. */
export function visualizationAddress(id) {
  return `/v/${encodeURIComponent(id)}`;
}

/** The Explain page preset to a model, a sample and a target class (it runs at once). */
export function explainAddress({ model, sample, target }) {
  return `/explain?${new URLSearchParams({ model, sample, target: String(target) })}`;
}

/** The share link `sharePath` (the server's `/v/{id}?<request>`) with `extra` entries (how it is viewed). */
export function shareAddress(sharePath, extra = []) {
  const url = new URL(sharePath, 'http://share.invalid');
  for (const [key, value] of extra) url.searchParams.set(key, value);
  return `${url.pathname}${url.search}`;
}

/** Show a share link in the address (see shareAddress). */
export function writeShare(sharePath, extra = []) {
  history.replaceState(null, '', shareAddress(sharePath, extra));
}

export function writeTour(name, stop) {
  history.replaceState(null, '', `/?${new URLSearchParams({ tour: name, stop: String(stop) })}`);
}
