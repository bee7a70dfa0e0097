// The model / layer / unit picker: layers grouped by stream, unit bounded by the layer's size.

import * as api from './api.js';
import { className, randomBadge } from './model-info.js';

const STREAM_GROUPS = [
  ['appearance', 'Appearance stream'],
  ['motion', 'Motion stream'],
  ['fusion', 'Fusion (both streams)'],
];
/** The id of the class logits layer, whose units are the model's classes. */
export const LOGITS = 'logits';

export class ChoiceForm extends EventTarget {
  constructor(form) {
    super();
    this.form = form;
    this.modelSelect = form.elements.model;
    this.layerSelect = form.elements.layer;
    this.unitInput = form.elements.unit;
    this.unitSlider = form.querySelector('.unit-slider');
    this.unitRange = form.querySelector('.unit-range');
    this.unitLabel = form.querySelector('.unit-label');
    this.modelBadge = form.querySelector('.model-badge');
    this.models = new Map(); // id -> full description (GET /api/models/{id}), loaded on demand

    this.modelSelect.addEventListener('change', () => this._changed(this.setModel(this.modelSelect.value)));
    this.layerSelect.addEventListener('change', () => this._changed(this._layerChanged()));
    this.unitInput.addEventListener('input', () => {
      const typed = Number(this.unitInput.value);
      if (this.unitInput.value === '' || !Number.isInteger(typed)) return;
      // A unit past the layer's last one becomes the last one at once: box, slider, address and
      // the result on screen never disagree about which unit is chosen.
      if (typed !== this._clamp(typed)) this.unitInput.value = String(this._clamp(typed));
      this.unitSlider.value = this.unitInput.value;
      this._changed(this._unitChanged());
    });
    this.unitSlider.addEventListener('input', () => {
      this.unitInput.value = this.unitSlider.value;
      this._changed(this._unitChanged());
    });
  }

  /** Fill the model list; resolves once `choice` (or the first model) is selected. */
  async load(choice = {}) {
    const models = await api.listModels();
    this.modelSelect.replaceChildren(...models.map((m) => new Option(m.title, m.id)));
    const model = models.some((m) => m.id === choice.model) ? choice.model : models[0]?.id;
    if (!model) throw new Error('the server offers no models');
    await this.select({ ...choice, model });
  }

  /** Select model, layer and unit (each falling back to a valid value). */
  async select({ model, layer, unit }) {
    await this.setModel(model, layer);
    if (Number.isInteger(unit)) this._setUnit(unit);
  }

  async setModel(modelId, layerId = this.layerSelect.value) {
    this.modelSelect.value = modelId;
    const description = await this.describe(modelId);
    this.modelSelect.title = description.title; // the whole title, where the box cuts it
    this.modelBadge.replaceChildren(...[randomBadge(description)].filter(Boolean));
    const groups = STREAM_GROUPS.map(([stream, label]) => {
      const layers = description.layers.filter((l) => l.stream === stream);
      if (!layers.length) return null;
      const group = document.createElement('optgroup');
      group.label = label;
      group.dataset.stream = stream;
      group.append(...layers.map((l) => new Option(`${l.id}  (${l.units})`, l.id)));
      return group;
    }).filter(Boolean);
    this.layerSelect.replaceChildren(...groups);
    const known = description.layers.some((l) => l.id === layerId);
    this.layerSelect.value = known ? layerId : description.layers[description.layers.length - 1].id;
    this._layerChanged();
  }

  /** The full description of a model (cached). */
  async describe(modelId) {
    if (!this.models.has(modelId)) this.models.set(modelId, await api.describeModel(modelId));
    return this.models.get(modelId);
  }

  get model() { return this.models.get(this.modelSelect.value); }
  get layer() { return this.model?.layers.find((l) => l.id === this.layerSelect.value); }

  /** The current choice: {model, layer, unit}. */
  value() {
    return { model: this.modelSelect.value, layer: this.layerSelect.value, unit: Number(this.unitInput.value) };
  }

  _layerChanged() {
    const max = this.layer.units - 1;
    for (const input of [this.unitInput, this.unitSlider]) input.max = String(max);
    this.unitRange.textContent = `0 – ${max}`;
    this._setUnit(Math.min(Number(this.unitInput.value) || 0, max));
  }

  _clamp(unit) {
    return Math.max(0, Math.min(unit, this.layer.units - 1));
  }

  _setUnit(unit) {
    this.unitInput.value = this.unitSlider.value = String(this._clamp(unit));
    this._unitChanged();
  }

  _unitChanged() {
    const unit = Number(this.unitInput.value);
    this.unitLabel.textContent = this.layer.id === LOGITS ? `class: ${className(this.model, unit)}` : '';
  }

  async _changed(pending) {
    await pending;
    this.dispatchEvent(new Event('change'));
  }
}
