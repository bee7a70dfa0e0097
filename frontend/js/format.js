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
