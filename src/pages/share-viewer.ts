/**
 * The share-location viewer (`/share-location?token=…`, the `viewer_url` of share-location/init):
 * one device, live, on a map, with the link's expiry counting down. When the link expires or is
 * revoked, or was never valid, the page says so plainly and stops.
 */
import { StreamClient } from '../client/index.js';
import { showState } from './connection-state.js';
import { MapView } from './map-view.js';
import { ago, Tracks } from './tracks.js';

const $ = (id: string) => document.getElementById(id)!;
const token = new URLSearchParams(location.search).get('token');
const tracks = new Tracks();
const map = new MapView($('map') as HTMLCanvasElement, tracks);
let expiresAt: number | null = null;
let ended = false;
let last: { id: string; seen: number } | null = null;

function banner(kind: 'bad' | 'warn', text: string): void {
  const el = $('banner');
  el.className = `banner show ${kind}`;
  el.textContent = text;
}

function tick(): void {
  if (last !== null) $('seen').textContent = ago(last.seen);
  if (expiresAt !== null && !ended) {
    const left = Math.max(0, Math.round((expiresAt - Date.now()) / 1000));
    const mmss = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, '0')}`;
    $('expiry').textContent = `${new Date(expiresAt).toLocaleTimeString()} (in ${mmss})`;
  }
}
setInterval(tick, 1000);

if (token === null || token === '') {
  banner('bad', 'This page needs a share link: open the viewer_url that share-location/init returned.');
  showState($('state'), 'link', { state: 'closed', reason: 'no token' });
} else {
  const client = new StreamClient({ url: location.origin, shareToken: token, format: 'json' });
  client.on('state', (change) => {
    if (!ended) showState($('state'), 'link', change);
  });
  client.on('subscribed', (ids, expires) => {
    $('device').textContent = ids[0] ?? '–';
    if (expires !== null) expiresAt = Date.parse(expires);
    tick();
  });
  client.on('position', (p) => {
    const track = tracks.update(p.deviceId ?? $('device').textContent ?? 'device', p.data, p.timestamp);
    if (track === null) return;
    last = { id: track.id, seen: track.lastSeen };
    map.selected = track.id;
    $('position').textContent = `${track.lat.toFixed(5)}, ${track.lon.toFixed(5)}`;
    $('speed').textContent = track.speed === null ? '–' : `${track.speed.toFixed(0)} km/h`;
    map.invalidate();
    tick();
  });
  client.on('ended', (why) => {
    ended = true;
    $('expiry').textContent = why === 'expired' ? 'expired' : 'revoked';
    banner(
      why === 'expired' ? 'warn' : 'bad',
      why === 'expired' ? 'This link has expired. Ask its owner for a new one.' : 'This link was revoked by its owner.',
    );
    showState($('state'), 'link', { state: 'closed', reason: why });
  });
  client.on('serverError', (e) => {
    ended = true;
    banner('bad', `This link cannot be used: ${e.message}`);
    showState($('state'), 'link', { state: 'closed', reason: e.code });
  });
  void client.start().catch(() => {});
  Object.assign(window, { viewer: { client, tracks } });
}
