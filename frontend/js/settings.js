// The settings panel, generated from the server's own schema of the settings (its OpenAPI
// document), so every setting gets a control with the server's defaults and bounds.
// Temporal weights get a logarithmic fast <-> slow slider.

import { openApi } from './api.js';

const SCHEMA_NAME = 'VisualizationSettings';
const LABELS = {
  steps: 'Steps', seed: 'Seed', lr: 'Learning rate', objective: 'Objective', param: 'Parameterisation',
  direction: 'Direction', diversity: 'Diversity', weights: 'Regulariser weights', norm: 'Norm penalty',
  tv_space: 'Spatial smoothness', tv_time: 'Temporal weight: fast ↔ slow', transforms: 'Robustness transforms',
  jitter: 'Jitter', zoom: 'Zoom', time_shift: 'Time shift', freedom: 'Amplitude freedom',
};
/** What an empty optional setting (default null) shows: the server fills it in by layer. */
const UNSET = 'by layer';
/** Temporal weights span decades: the slider moves in log10 units between these. */
const LOG_MIN = -3;
const LOG_MAX = 3;

/**
 * A stored request's settings with the values the server filled in by layer (`param`, `freedom`) unset
 * again where they are the layer's own: the panel then shows "by layer", and another layer gets its own
 * choice rather than this one's (`pca` is the class logits' choice, not a hidden unit's). The layer's
 * freedom is its param's, so a freedom goes only with its param (a freedom typed for another param stays).
 */
export function layerChoicesUnset(stored, layer, fromClip) {
  const defaults = fromClip ? layer?.start_defaults : layer?.defaults;
  if (!defaults || stored.param !== defaults.param) return stored;
  const settings = { ...stored };
  delete settings.param;
  if (settings.freedom === defaults.freedom) delete settings.freedom;
  return settings;
}

/** What values a setting's schema allows, in words ("a whole number from 1 to 1024"). */
export function allowed(schema) {
  if (schema.enum) return `one of ${schema.enum.join(', ')}`;
  const kind = schema.type === 'integer' ? 'a whole number' : 'a number';
  const low = schema.minimum ?? schema.exclusiveMinimum;
  const high = schema.maximum ?? schema.exclusiveMaximum;
  const above = schema.minimum !== undefined ? `at least ${low}` : `above ${low}`;
  const below = schema.maximum !== undefined ? `at most ${high}` : `below ${high}`;
  if (low !== undefined && high !== undefined) {
    return schema.minimum !== undefined && schema.maximum !== undefined ? `${kind} from ${low} to ${high}` : `${kind}, ${above} and ${below}`;
  }
  if (low !== undefined) return `${kind}, ${above}`;
  if (high !== undefined) return `${kind}, ${below}`;
  return kind;
}

/** Mark a number input invalid outside its schema's exclusive bounds, which min / max cannot hold (a learning
 * rate must be above 0): the form then refuses it as it does a value past min or max. */
function checkExclusive(field) {
  const { exclusiveMinimum: above, exclusiveMaximum: below } = field.schema;
  const raw = field.input.value;
  const value = Number(raw);
  const outside = raw !== '' && ((above !== undefined && !(value > above)) || (below !== undefined && !(value < below)));
  field.input.setCustomValidity(outside ? allowed(field.schema) : '');
}

export class SettingsPanel extends EventTarget {
  constructor(root) {
    super();
    this.root = root;
    this.body = root.querySelector('.settings-body');
    this.fields = []; // {key, path, schema, input, slider?}
    root.querySelector('.settings-reset').addEventListener('click', () => {
      this.setValues({});
      this._changed();
    });
  }

  /** Build the controls from the server's schema; without one, the panel stays hidden. */
  async load() {
    let schemas;
    try {
      schemas = (await openApi()).components?.schemas ?? {};
    } catch {
      schemas = {};
    }
    const root = schemas[SCHEMA_NAME];
    this.root.hidden = !root;
    if (!root) return;
    this.body.replaceChildren(...this._group(root, [], schemas));
  }

  /** Set every control: `settings` (nested, possibly partial) over the defaults. */
  setValues(settings) {
    for (const field of this.fields) {
      this._write(field, getPath(settings, field.path) ?? field.schema.default);
      if (this._read(field) === undefined) this._write(field, field.schema.default); // out of bounds
    }
  }

  /** Read the settings of a query string (keys are dotted paths, e.g. `weights.tv_time.motion`). Returns
   * a sentence on the entries it could not take and what the panel shows instead ('' when it took them all):
   * a class must not be shown the default's picture for an address that asked for another. */
  setFromQuery(params) {
    const settings = {};
    const asked = [];
    for (const field of this.fields) {
      const raw = params.get(field.key);
      if (raw === null || raw === '') continue;
      setPath(settings, field.path, field.schema.enum ? raw : Number(raw));
      asked.push([field, raw]);
    }
    this.setValues(settings);
    const refused = asked.filter(([field, raw]) => {
      const shown = this._read(field);
      return field.schema.enum ? shown !== raw : shown !== Number(raw);
    });
    return refused.map(([field, raw]) => `${this._label(field)} cannot be ${JSON.stringify(raw)} (${allowed(field.schema)}): `
      + `showing ${this._read(field) ?? UNSET}.`).join(' ');
  }

  _label(field) {
    return LABELS[field.path.at(-1)] ?? field.schema.title ?? field.key;
  }

  /** Every setting as shown (defaults included), nested as the CONTRACT's `settings` object. */
  values() {
    const settings = {};
    for (const field of this.fields) setPath(settings, field.path, this._read(field) ?? field.schema.default);
    return settings;
  }

  /** The settings that differ from the defaults, nested as the CONTRACT's `settings` object. */
  overrides() {
    const settings = {};
    for (const [field, value] of this._changedFields()) setPath(settings, field.path, value);
    return settings;
  }

  /** The same as query entries: [dotted path, value]. */
  queryEntries() {
    return this._changedFields().map(([field, value]) => [field.key, String(value)]);
  }

  _changedFields() {
    return this.fields
      .map((field) => [field, this._read(field)])
      .filter(([field, value]) => value !== undefined && value !== field.schema.default);
  }

  _group(schema, path, schemas) {
    const nodes = [];
    for (const [name, property] of Object.entries(schema.properties ?? {})) {
      const resolved = optional(resolve(property, schemas));
      const childPath = [...path, name];
      if (resolved.type === 'object' || resolved.properties) {
        const fieldset = document.createElement('fieldset');
        const legend = document.createElement('legend');
        legend.textContent = LABELS[name] ?? resolved.title ?? name;
        fieldset.title = resolved.description ?? '';
        fieldset.append(legend, ...this._group(resolved, childPath, schemas));
        nodes.push(fieldset);
      } else {
        nodes.push(this._control(name, resolved, childPath));
      }
    }
    return nodes;
  }

  _control(name, schema, path) {
    const key = path.join('.');
    const id = `setting-${key.replaceAll('.', '-')}`;
    const label = document.createElement('label');
    label.className = 'setting';
    label.htmlFor = id;
    label.title = schema.description ?? '';
    const caption = document.createElement('span');
    caption.textContent = LABELS[name] ?? schema.title ?? name;
    label.append(caption);
    const field = { key, path, schema, input: null, slider: null };

    if (schema.enum) {
      field.input = document.createElement('select');
      if (schema.optional) field.input.append(new Option(UNSET, ''));
      field.input.append(...schema.enum.map((value) => new Option(value, value)));
    } else {
      field.input = document.createElement('input');
      field.input.type = 'number';
      field.input.required = !schema.optional;
      if (schema.optional) field.input.placeholder = UNSET;
      field.input.step = schema.type === 'integer' ? '1' : 'any';
      if (schema.minimum !== undefined) field.input.min = String(schema.minimum);
      if (schema.maximum !== undefined) field.input.max = String(schema.maximum);
    }
    field.input.id = id;
    field.input.name = key;
    field.input.addEventListener('input', () => checkExclusive(field));
    field.input.addEventListener('change', () => {
      if (field.slider) field.slider.value = String(toLog(Number(field.input.value)));
      this._changed();
    });

    if (path.includes('tv_time')) {
      label.classList.add('temporal');
      field.slider = document.createElement('input');
      Object.assign(field.slider, { type: 'range', min: LOG_MIN, max: LOG_MAX, step: 0.25 });
      field.slider.setAttribute('aria-label', `${caption.textContent} temporal weight, fast to slow`);
      field.slider.addEventListener('input', () => {
        field.input.value = String(fromLog(Number(field.slider.value)));
        this._changed();
      });
      const ends = document.createElement('span');
      ends.className = 'ends';
      ends.innerHTML = '<small>fast</small><small>slow</small>';
      label.append(field.input, field.slider, ends);
    } else {
      label.append(field.input);
    }
    this.fields.push(field);
    this._write(field, schema.default);
    return label;
  }

  _write(field, value) {
    field.input.value = value == null ? '' : String(value);
    if (field.slider) field.slider.value = String(toLog(Number(value)));
    checkExclusive(field);
  }

  _read(field) {
    if (field.schema.enum) return field.schema.enum.includes(field.input.value) ? field.input.value : undefined;
    if (field.input.value === '' || !field.input.checkValidity()) return undefined;
    return Number(field.input.value);
  }

  _changed() {
    this.dispatchEvent(new Event('change'));
  }
}

/** Follow a `$ref` (or a single-entry `allOf`) into `components.schemas`. */
function resolve(schema, schemas) {
  const ref = schema.$ref ?? schema.allOf?.[0]?.$ref;
  return ref ? { ...schemas[ref.split('/').pop()], ...schema } : schema;
}

/** A setting that may be left unset (`anyOf` a type and null, default null): the type's schema, marked optional. */
function optional(schema) {
  const branch = schema.anyOf?.find((option) => option.type !== 'null');
  if (!branch || !schema.anyOf.some((option) => option.type === 'null')) return schema;
  const { anyOf, ...rest } = schema;
  return { ...branch, ...rest, optional: true };
}

function toLog(weight) {
  return weight > 0 ? Math.min(LOG_MAX, Math.max(LOG_MIN, Math.log10(weight))) : LOG_MIN;
}

function fromLog(position) {
  return Number((10 ** position).toPrecision(3));
}

function getPath(object, path) {
  return path.reduce((value, key) => (value == null ? undefined : value[key]), object);
}

function setPath(object, path, value) {
  let node = object;
  for (const key of path.slice(0, -1)) node = node[key] ??= {};
  node[path[path.length - 1]] = value;
  return object;
}
