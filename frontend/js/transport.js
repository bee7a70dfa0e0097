// Playback controls for a timeline: play/pause, previous/next frame, scrubber, frame counter, fps.

/** Bind the controls inside `root` (the transport bar) to `timeline`. */
export function bindTransport(root, timeline) {
  const play = root.querySelector('.play');
  const scrub = root.querySelector('.scrub');
  const label = root.querySelector('.frame-label');
  const fps = root.querySelector('.fps-select');

  const render = () => {
    play.textContent = timeline.playing ? '❚❚' : '►';
    play.setAttribute('aria-label', timeline.playing ? 'Pause' : 'Play');
    scrub.max = String(timeline.frames - 1);
    scrub.value = String(timeline.frame);
    label.textContent = `frame ${timeline.frame + 1} / ${timeline.frames}`;
  };
  timeline.addEventListener('frame', render);
  timeline.addEventListener('state', render);

  play.addEventListener('click', () => timeline.toggle());
  root.querySelector('.prev').addEventListener('click', () => timeline.step(-1));
  root.querySelector('.next').addEventListener('click', () => timeline.step(1));
  scrub.addEventListener('input', () => {
    timeline.pause();
    timeline.seek(Number(scrub.value));
  });
  fps.addEventListener('change', () => timeline.setFps(Number(fps.value)));
  timeline.setFps(Number(fps.value));
  render();
}

/**
 * Space plays/pauses, arrows step frames, and each key of `actions` runs its function, unless the
 * user is typing in a field or pressing a button.
 */
export function bindKeys(timeline, actions = {}) {
  document.addEventListener('keydown', (event) => {
    if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey) return;
    if (event.target.closest?.('input, select, textarea, [contenteditable]')) return;
    if (event.key === ' ' && event.target.closest?.('button, a')) return; // let it press the button
    if (event.key === ' ') timeline.toggle();
    else if (event.key === 'ArrowLeft') timeline.step(-1);
    else if (event.key === 'ArrowRight') timeline.step(1);
    else if (Object.hasOwn(actions, event.key)) actions[event.key]();
    else return;
    event.preventDefault();
  });
}
