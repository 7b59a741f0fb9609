/**
 * The live dashboard (`/`): every device on a canvas map with its trail, a device list with
 * last-seen times, and the gateway's own numbers. One msgpack connection to
 * `/api/v1/stream?device_ids=*&batch=1` (add `?token=` to the page URL when the stream needs a JWT);
 * positions only update memory, the map redraws once per animation frame and the list twice a second.
 */
import { StreamClient } from '../client/index.js';
import { showState } from './connection-state.js';
import { formatCount, pollGatewayStats } from './gateway-stats.js';
import { MapView } from './map-view.js';
import { ago, Tracks } from './tracks.js';

const params = new URLSearchParams(location.search);
const $ = (id: string) => document.getElementById(id)!;
const tracks = new Tracks();
const map = new MapView($('map') as HTMLCanvasElement, tracks);
const MAX_ROWS = 300;

const client = new StreamClient({
  url: location.origin,
  deviceIds: ['*'],
  batch: true, // one message per 100 ms however many devices move: a browser pays per message
  format: params.get('format') === 'json' ? 'json' : 'msgpack',
  token: params.get('token') ?? undefined,
});
client.on('state', (change) => showState($('state'), 'stream', change));
client.on('serverError', (e) => showState($('state'), 'stream', { state: 'closed', reason: e.message }));
client.on('position', (p) => {
  if (p.deviceId !== null && tracks.update(p.deviceId, p.data, p.timestamp) !== null) map.invalidate();
});
void client.start().catch(() => {});

$('fit').addEventListener('click', () => map.fit());

const filter = $('filter') as HTMLInputElement;
const body = $('devices');
body.addEventListener('click', (e) => {
  const row = (e.target as HTMLElement).closest('tr');
  const id = row?.dataset.device;
  const track = id === undefined ? undefined : tracks.byId.get(id);
  if (track === undefined) return;
  map.selected = track.id;
  map.focus(track);
});

function renderList(): void {
  const needle = filter.value.trim().toLowerCase();
  const all = [...tracks.byId.values()].filter((t) => needle === '' || t.id.toLowerCase().includes(needle));
  all.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)); // stable rows; "last seen" says who is quiet
  const rows = all.slice(0, MAX_ROWS);
  const now = Date.now();
  // Rebuilt as one string: a few hundred rows twice a second is cheaper than diffing here.
  body.innerHTML = rows
    .map(
      (t) =>
        `<tr data-device="${escape(t.id)}"${t.id === map.selected ? ' class="selected"' : ''}><td>${escape(t.id)}</td><td data-k="lat">${t.lat.toFixed(5)}</td><td data-k="lon">${t.lon.toFixed(5)}</td><td>${t.speed === null ? '' : t.speed.toFixed(0)}</td><td class="muted">${ago(t.lastSeen, now)}</td></tr>`,
    )
    .join('');
  $('list-more').textContent = all.length > MAX_ROWS ? `${all.length - MAX_ROWS} more; filter to find one` : '';
  $('stat-devices').textContent = formatCount(tracks.byId.size);
}

const escape = (s: string) => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
let lastRate = performance.now();
setInterval(() => {
  renderList();
  const now = performance.now();
  $('stat-rate').textContent = formatCount(Math.round((tracks.takeCount() * 1000) / (now - lastRate)));
  lastRate = now;
  map.invalidate(); // stale markers change colour with time
}, 500);

pollGatewayStats((r) => {
  $('stat-connections').textContent = formatCount(r.connections);
  $('stat-deliveries').textContent = formatCount(r.deliveriesPerSecond);
  $('stat-ingest').textContent = formatCount(r.ingestPerSecond);
  $('stat-drops').textContent = formatCount(r.drops);
});

// For tests and the curious: the page's state.
Object.assign(window, { dashboard: { tracks, map, client } });
