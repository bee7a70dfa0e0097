// Draws one frame at a time of a horizontal strip image (T frames side by side, maybe with gaps
// between them) on a canvas.

export class StripPlayer {
  /** @param {HTMLCanvasElement} canvas @param {import('./timeline.js').Timeline} timeline */
  constructor(canvas, timeline) {
    this.canvas = canvas;
    this.context = canvas.getContext('2d');
    this.timeline = timeline;
    this.image = null;
    this.frames = 1;
    this.pitch = 0; // distance in pixels from one frame's left edge to the next one's
    this._loading = 0;
    this._draw = () => this.draw();
    timeline.addEventListener('frame', this._draw);
  }

  /**
   * Show the strip at `src` (a URL or data URL) holding `frames` frames of width / height `aspect`.
   * Resolves once drawn; a newer call supersedes an older one still loading, so live previews never
   * go back in time.
   */
  async show(src, { frames, aspect }) {
    const ticket = ++this._loading;
    const image = new Image();
    image.src = src;
    await image.decode();
    if (ticket !== this._loading) return;
    this.image = image;
    this.frames = Math.max(1, frames);
    const width = Math.min(image.naturalWidth, Math.round(image.naturalHeight * aspect));
    this.pitch = this.frames > 1 ? (image.naturalWidth - width) / (this.frames - 1) : 0;
    if (this.canvas.width !== width || this.canvas.height !== image.naturalHeight) {
      this.canvas.width = width;
      this.canvas.height = image.naturalHeight;
    }
    this.draw();
  }

  clear() {
    this._loading++;
    this.image = null;
    this.context.clearRect(0, 0, this.canvas.width, this.canvas.height);
  }

  draw() {
    if (!this.image) return;
    const { width, height } = this.canvas;
    const frame = this.timeline.frame % this.frames;
    this.context.clearRect(0, 0, width, height);
    this.context.drawImage(this.image, Math.round(frame * this.pitch), 0, width, height, 0, 0, width, height);
  }

  /** Unbind from the timeline (the player's view is going away). */
  dispose() {
    this.timeline.removeEventListener('frame', this._draw);
  }
}
