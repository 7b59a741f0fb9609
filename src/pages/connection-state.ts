/** The header's connection line, from a client's `state` events. */
import type { StateChange } from '../client/index.js';

export function showState(element: HTMLElement, label: string, change: StateChange): void {
  element.dataset.state = change.state;
  let text: string = change.state;
  if (change.state === 'reconnecting' && change.delayMs !== undefined)
    text = `reconnecting in ${(change.delayMs / 1000).toFixed(1)} s (attempt ${change.attempt})`;
  if (change.state === 'closed' && change.reason) text = `closed: ${change.reason}`;
  element.innerHTML = '';
  element.append(`${label}: `, Object.assign(document.createElement('b'), { textContent: text }));
}
