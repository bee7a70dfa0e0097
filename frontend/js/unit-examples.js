// A unit's dataset examples (GET /api/examples): its top test clips, the peak boxed, next to a link
// to the unit's visualisation.
import { unitExamples } from './api.js';
import { element } from './dom.js';
import { accentuateLink, unitLink } from './unit-link.js';

/** Fill `container` with the examples of one unit (replacing what it showed); `settings`: address entries
 * of the settings an "accentuate" link keeps (those of the result beside them). */
export async function showExamples(container, model, layer, unit, k = 4, settings = []) {
  container.replaceChildren(element('p', 'finding the top clips…', 'hint'));
  const body = await unitExamples(model, layer, unit, k);
  const head = element('p');
  // a layer without positions (the logits, a fully connected layer) has no peak to box
  const boxed = body.examples.some((example) => example.where !== null) ? ', the peak boxed' : '';
  head.append(unitLink(model, layer, unit, `visualise ${layer} #${unit}`),
    ` · its top ${body.examples.length} of ${body.clips} test clips${boxed}:`);
  container.replaceChildren(head);
  for (const example of body.examples) {
    const figure = element('figure', '', 'unit-example');
    for (const stream of ['appearance', 'motion']) {
      const img = element('img');
      img.src = example[stream];
      img.alt = `clip ${example.clip} ${stream}`;
      figure.append(img);
    }
    const caption = element('figcaption', `clip ${example.clip} (${example.label}), peak ${example.activation.toFixed(3)} `);
    caption.append(accentuateLink(model, layer, unit, { example: example.clip }, settings));
    figure.append(caption);
    container.append(figure);
  }
}
