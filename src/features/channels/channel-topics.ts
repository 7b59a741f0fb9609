/**
 * The uWS topics channel events are published on (edge/channel-history.ts has the list): read by
 * the channel routes and by /ws/connect (the users feature), whose sockets join them too.
 */
import { ENVELOPE, type EnvelopeIndex } from './envelopes.js';
import type { FormatIndex } from '../../protocol/codec.js';

export const channelTopic = (envelope: EnvelopeIndex, format: FormatIndex, channel: string) => `ch.${envelope}.${format}:${channel}`;
export const userTopic = (envelope: EnvelopeIndex, format: FormatIndex, channel: string, userId: string) =>
  envelope === ENVELOPE.CONNECT ? `ch.${envelope}.${format}:@${userId}` : `ch.${envelope}.${format}:${channel}@${userId}`;
