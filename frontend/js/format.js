// How the pages write numbers and durations.

/** A value for reading: three decimals, or exponent notation when very large or very small. */
export function formatNumber(value) {
  if (typeof value !== 'number' || !Number.isFinite(value)) return '–';
  return Math.abs(value) >= 1000 || (Math.abs(value) < 0.01 && value !== 0) ? value.toExponential(2) : value.toFixed(3);
}

/** Milliseconds as seconds with one decimal: "3.7 s". */
export function seconds(ms) {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** A rough time to go: whole seconds, or minutes and seconds past a minute. */
export function duration(ms) {
  const total = Math.max(1, Math.round(ms / 1000));
  return total < 60 ? `${total} s` : `${Math.floor(total / 60)} min ${total % 60} s`;
}

/** A probability as a percentage with one decimal: "63.1%". */
export function percent(probability) {
  return `${(100 * probability).toFixed(1)}%`;
}

/** Where an estimate of this server's pace comes from, in words (the `source` of the API's estimates). */
export function paceSource(source) {
  return source === 'measured' ? "at the pace of this layer's last run here" : "estimated from the layer's operations";
}

/**
 * A `queued` message ({position, eta_s, reason?}) in words: "Queued: 2 ahead of you, about 9 s" ("next
 * in line" for 0); `short` for a small card: "queued: 2 ahead, ~9 s". One with a `reason` waits for a
 * one-off preparation, which it names: "Before it starts: computing …, about 30 s" ("preparing, ~30 s").
 */
export function queuedText({ position, eta_s: eta, reason }, short = false) {
  const wait = duration(eta * 1000);
  if (reason) return short ? `preparing, ~${wait}` : `Before it starts: ${reason}, about ${wait}`;
  if (short) return `queued: ${position ? `${position} ahead` : 'next'}, ~${wait}`;
  return `Queued: ${position ? `${position} ahead of you` : 'next in line'}, about ${wait}`;
}
