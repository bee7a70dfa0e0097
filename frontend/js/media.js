// Which images show a visualisation: strips of its frames, live (progress previews) or finished.

export const STREAMS = ['appearance', 'motion'];
export const CODINGS = ['direction', 'components', 'arrows'];

/** The result medium holding a stream's strip (the motion one in the given flow coding). */
const stripMedium = (stream, coding) => (stream === 'motion' ? `motion-${coding}.png` : 'appearance.png');

/** The strip with the transparency map as its alpha channel (the flow's is direction-coded). */
const evidenceMedium = (stream) => `${stream}-alpha.png`;

/** Whether a finished visualisation has evidence strips (results made before them do not). */
export function hasEvidence(visualization) {
  return STREAMS.some((stream) => visualization.result.media[evidenceMedium(stream)]);
}

/**
 * {stream: {src, frames, aspect}} of a finished visualisation of a model (its description); with
 * `evidence`, the strips that fade where the unit's evidence is small (where there are any).
 */
export function resultStrips(visualization, model, coding = CODINGS[0], evidence = false) {
  const strips = {};
  const { media } = visualization.result;
  for (const stream of STREAMS) {
    const src = (evidence && media[evidenceMedium(stream)]) || media[stripMedium(stream, coding)];
    const input = model.inputs[stream];
    if (src && input) strips[stream] = { src, frames: input.frames, aspect: input.width / input.height };
  }
  return strips;
}

/** The same for a live `progress` message (its previews are direction-coded). */
export function previewStrips(message) {
  const shape = { frames: message.frames, aspect: message.width / message.height };
  return Object.fromEntries(Object.entries(message.previews ?? {}).map(([stream, src]) => [stream, { src, ...shape }]));
}
