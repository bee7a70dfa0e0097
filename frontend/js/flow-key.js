// The key to the direction coding of optical flow: the colour wheel with up / down / left / right
// written around it (the wheel's right is motion to the right, its top motion up), and a line for
// its scale. The same picture as on the help page (images/colour-wheel.png, drawn by the server's
// own coding: scripts/make-help-images).

import { element } from './dom.js';

export const WHEEL_SRC = '/static/images/colour-wheel.png';
const DIRECTIONS = [['up', '↑ up'], ['left', '← left'], ['right', 'right →'], ['down', 'down ↓']];

/** A labelled colour wheel: a <figure class="flow-key">, with `scale` (a <figcaption>) to fill in. */
export function flowKey() {
  const figure = element('figure', '', 'flow-key');
  const wheel = element('div', '', 'wheel');
  const image = element('img');
  image.src = WHEEL_SRC;
  image.alt = 'Colour wheel of the direction coding: the hue says where a point moves, the saturation how fast';
  wheel.append(image, ...DIRECTIONS.map(([where, text]) => element('span', text, `direction ${where}`)));
  const scale = element('figcaption', 'white: still · pale: slow · saturated: fast', 'flow-scale');
  figure.append(wheel, scale);
  return { figure, scale };
}
