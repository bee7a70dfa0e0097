// A shared clock for looping clips: every player bound to one timeline shows the same frame.

export class Timeline extends EventTarget {
  constructor({ frames = 1, fps = 8 } = {}) {
    super();
    this.frames = frames;
    this.fps = fps;
    this.frame = 0;
    this.playing = true;
    this._timer = null;
    this._schedule();
  }

  setFrames(frames) {
    if (frames === this.frames) return;
    this.frames = Math.max(1, frames);
    this.seek(this.frame);
  }

  setFps(fps) {
    this.fps = fps;
    this._schedule();
  }

  /** Show frame `frame` (wrapped into range). */
  seek(frame) {
    this.frame = ((frame % this.frames) + this.frames) % this.frames;
    this.dispatchEvent(new Event('frame'));
  }

  step(delta) {
    this.pause();
    this.seek(this.frame + delta);
  }

  play() { this._setPlaying(true); }
  pause() { this._setPlaying(false); }
  toggle() { this._setPlaying(!this.playing); }

  _setPlaying(playing) {
    if (playing === this.playing) return;
    this.playing = playing;
    this._schedule();
    this.dispatchEvent(new Event('state'));
  }

  _schedule() {
    clearInterval(this._timer);
    this._timer = this.playing ? setInterval(() => this.seek(this.frame + 1), 1000 / this.fps) : null;
  }
}
