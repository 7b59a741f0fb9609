/**
 * The event console (`/console`), the sensor reference's HTML client done properly: pick channels
 * (from /api/v1/ws/stats) and an endpoint, and watch `entity_event`, `realtime_update` and
 * `notification` frames as they arrive, newest first, with each channel's state, offset and
 * whether a reconnect recovered what it missed.
 */
import { ChannelClient } from '../client/index.js';

const $ = (id: string) => document.getElementById(id)!;
const form = $('controls') as HTMLFormElement;
const frames = $('frames');
const MAX_FRAMES = 500;
let clients: ChannelClient[] = [];
const status = new Map<string, string>();

async function loadChannels(): Promise<void> {
  try {
    const stats = await (await fetch('/api/v1/ws/stats')).json();
    const names = Object.keys(stats.channels ?? {}).sort();
    $('channels').classList.remove('muted');
    $('channels').innerHTML = '';
    for (const name of names) {
      const box = Object.assign(document.createElement('input'), { type: 'checkbox', name: 'channel', value: name, checked: name === 'general' });
      const label = document.createElement('label');
      label.append(box, ` ${name}`);
      $('channels').append(label);
    }
  } catch {
    $('channels').textContent = 'Could not list the channels (GET /api/v1/ws/stats).';
  }
}

function shown(): Set<string> {
  return new Set(new FormData(form).getAll('show').map(String));
}

function kindOf(frame: any): string {
  return ['entity_event', 'realtime_update', 'notification'].includes(frame?.type) ? frame.type : 'other';
}

function add(channel: string, frame: any): void {
  const kind = kindOf(frame);
  const row = document.createElement('div');
  row.className = 'frame';
  row.dataset.kind = kind;
  row.dataset.channel = channel;
  row.hidden = !shown().has(kind);
  const meta = document.createElement('div');
  meta.className = 'meta';
  const tag = Object.assign(document.createElement('span'), { className: `tag ${kind}`, textContent: frame?.type ?? '?' });
  meta.append(tag, `${new Date().toLocaleTimeString()} · ${channel}${typeof frame?.offset === 'number' ? ` · offset ${frame.offset}` : ''}`);
  row.append(meta, Object.assign(document.createElement('pre'), { textContent: JSON.stringify(frame, null, 2) }));
  frames.prepend(row);
  while (frames.childElementCount > MAX_FRAMES) frames.lastElementChild!.remove();
}

function renderStatus(): void {
  $('status').innerHTML = '';
  for (const [channel, text] of status) $('status').append(Object.assign(document.createElement('div'), { textContent: `${channel}: ${text}` }));
  $('summary').textContent = clients.length === 0 ? 'not connected' : `${clients.length} channel${clients.length === 1 ? '' : 's'}`;
}

function disconnect(): void {
  for (const c of clients) c.stop();
  clients = [];
  status.clear();
  renderStatus();
  $('connect').textContent = 'Connect';
}

form.addEventListener('submit', (e) => {
  e.preventDefault();
  if (clients.length > 0) return disconnect();
  const data = new FormData(form);
  const field = (name: string) => {
    const value = data.get(name);
    return typeof value === 'string' ? value : ''; // text inputs only: a File is never one of them
  };
  const token = field('token');
  const userId = field('userId');
  for (const channel of data.getAll('channel').map(String)) {
    const client = new ChannelClient({
      url: location.origin,
      channel,
      dialect: data.get('dialect') === 'realtime' ? 'realtime' : 'entity',
      userId: userId === '' ? undefined : userId,
      format: data.get('format') === 'msgpack' ? 'msgpack' : 'json',
      token: token === '' ? undefined : token,
    });
    client.on('state', (s) => {
      status.set(channel, s.state + (s.reason ? ` (${s.reason})` : ''));
      renderStatus();
    });
    client.on('connected', (info) => {
      const recovery = info.recovered === undefined ? '' : info.recovered ? `, recovered ${info.replayed} missed` : `, NOT recovered (${info.reason}): reload`;
      status.set(channel, `open at offset ${info.offset}${recovery}`);
      renderStatus();
    });
    client.on('event', (frame) => add(channel, frame));
    client.on('serverError', (err) => add(channel, { type: 'error', data: err }));
    void client.start().catch(() => {});
    clients.push(client);
  }
  if (clients.length > 0) $('connect').textContent = 'Disconnect';
  renderStatus();
});

$('clear').addEventListener('click', () => (frames.innerHTML = ''));
form.addEventListener('change', (e) => {
  if ((e.target as HTMLInputElement).name !== 'show') return;
  const visible = shown();
  for (const row of frames.children) (row as HTMLElement).hidden = !visible.has((row as HTMLElement).dataset.kind!);
});

void loadChannels();
