/**
 * The uWS topics channel events are published on (edge/channel-history.ts has the list): read by
 * the channel routes and by /ws/connect (the users feature), whose sockets join them too.
 */
import type { EnvelopeIndex } from './envelopes.js';

export const channelTopic = (envelope: EnvelopeIndex, format: 0 | 1, channel: string) => `ch.${envelope}.${format}:${channel}`;
export const userTopic = (envelope: EnvelopeIndex, format: 0 | 1, channel: string, userId: string) =>
  envelope === 2 ? `ch.2.${format}:@${userId}` : `ch.${envelope}.${format}:${channel}@${userId}`;
