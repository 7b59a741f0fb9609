/**
 * A channel event as ingest hands it to the edges: parsed once (bounded before it is parsed:
 * protocol/bounded-json.ts) from a bus message or a log row, and rendered once in every envelope
 * and format (channels/envelopes.ts), with the Azure group messages of a hub-bound channel.
 */
import type { ChannelSpec } from '../channel-config.js';
import { parseChannelEvent, type ChannelEvent } from '../channel-event.js';
import { renderEvent } from '../envelopes.js';
import type { ChannelEventRecord } from '../messages.js';
import { isGroupName } from '../../azure/commands.js';
import { renderMessage } from '../../azure/frames.js';
import { GatewayError } from '../../../errors/gateway-error.js';
import { BoundedJsonError, parseJsonBytes, parseJsonText } from '../../../protocol/bounded-json.js';
import type { LogRow } from '../../../store/store.js';

const userIdOf = (event: ChannelEvent) => (event.kind === 'notification' ? event.userId : null);

/** The Azure groups an event of a hub-bound channel goes to: its `metadata.groups`. */
export function azureGroupsOf(event: ChannelEvent): string[] {
  const groups = event.kind === 'entity' ? event.metadata?.groups : undefined;
  return Array.isArray(groups) ? groups.filter(isGroupName) : [];
}

/** A bus message's event; throws GW_ERR_EVENT_INVALID. `at`: the timestamp of an event without one. */
export function parseBusEvent(payload: Buffer, at: number, maxDepth: number): ChannelEvent {
  let value: unknown;
  try {
    value = parseJsonBytes(payload, { maxDepth });
  } catch (err) {
    throw new GatewayError('GW_ERR_EVENT_INVALID', err instanceof BoundedJsonError ? `event ${err.detail}` : 'not valid JSON');
  }
  return parseChannelEvent(value, at);
}

/** A log row's event (timestamped with the time it was logged when it has none); throws when it cannot be parsed. */
export function parseLogEvent(row: LogRow, maxDepth: number): ChannelEvent {
  return parseChannelEvent(parseJsonText(row.event, { maxDepth }), row.at);
}

/** `azureGroups`: the Azure groups a live event of a hub-bound channel goes to (none for the history). */
export function renderRecord(
  spec: ChannelSpec,
  offset: number,
  at: number,
  event: ChannelEvent,
  azureGroups: readonly string[],
  epoch: string,
): ChannelEventRecord {
  const channel = spec.name;
  const record = { channel, offset, at, userId: userIdOf(event), frames: renderEvent(event, channel, offset, epoch) };
  if (spec.azureHub === null || azureGroups.length === 0) return record;
  const data = Buffer.from(JSON.stringify(event.data));
  const writtenAt = Date.parse(event.timestamp) || at;
  return {
    ...record,
    azure: { hub: spec.azureHub, writtenAt, groups: azureGroups.map((group) => ({ group, message: renderMessage(group, 'json', data, null) })) },
  };
}
