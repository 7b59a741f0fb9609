/**
 * The gateway's pages in headless Chromium (Debian's, driven by playwright-core; no browser
 * download) against the real gateway: the dashboard while the simulator runs, the share-location
 * viewer through expiry and revocation, and the event console showing an event created over REST.
 * Screenshots go to test-artifacts/.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { authEnv } from '../helpers/auth-env.js';
import { cspViolations, openPage, screenshot } from '../helpers/browser.js';
import { REPO_ROOT, startGateway } from '../helpers/gateway-process.js';
import { connectPublisher } from '../helpers/publisher.js';
import { keyPairs, mintJwt, type KeyPairs } from '../helpers/tokens.js';

let keys: KeyPairs;
beforeAll(async () => {
  keys = await keyPairs();
});

const POLL = { timeout: 15_000, interval: 100 };

describe('pages served by the gateway, in Chromium', () => {
  it("/ shows every device moving on the map, their last-seen times and the gateway's numbers while the simulator runs", async () => {
    const gw = await startGateway();
    // `npm run simulate` without its rebuild (npm test built dist/ already).
    const sim = spawn(process.execPath, [`${REPO_ROOT}dist/scripts/simulate.js`, '--devices', '40', '--rate', '4', '--duration', '120', '--url', gw.mqttUrl], {
      stdio: 'ignore',
    });
    onTestFinished(() => {
      sim.kill();
    });
    const { page, consoleErrors } = await openPage(`${gw.http}/`);
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(String(err)));

    await expect.poll(() => page.locator('#stat-devices').innerText(), POLL).toBe('40');
    await expect.poll(() => page.locator('#state').innerText(), POLL).toBe('stream: open');
    const row = page.locator('tr[data-device="SIM-0001"]');
    const where = async () => `${await row.locator('[data-k="lat"]').innerText()},${await row.locator('[data-k="lon"]').innerText()}`;
    const before = await where();
    await expect.poll(where, POLL).not.toBe(before); // it moves
    await expect.poll(() => row.locator('td').last().innerText(), POLL).toMatch(/^\d+ s ago$/);

    // The map is drawn (not just the list): frames go on, and the canvas holds marker-coloured pixels.
    const frames = () => page.evaluate(() => (window as any).dashboard.map.frames as number);
    const drawn = await frames();
    await expect.poll(frames, POLL).toBeGreaterThan(drawn + 3);
    const markerPixels = await page.evaluate(() => {
      const canvas = document.getElementById('map') as HTMLCanvasElement;
      const data = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
      let n = 0;
      for (let i = 0; i < data.length; i += 4) if (data[i] === 0x38 && data[i + 1] === 0xbd && data[i + 2] === 0xf8) n++;
      return n;
    });
    expect(markerPixels).toBeGreaterThan(40 * 10);

    // The gateway's own numbers, live: this page's connection, and deliveries flowing.
    await expect.poll(async () => Number(await page.locator('#stat-connections').innerText()), POLL).toBeGreaterThanOrEqual(1);
    await expect.poll(async () => Number(await page.locator('#stat-deliveries').innerText()), POLL).toBeGreaterThan(0);
    await expect.poll(async () => Number(await page.locator('#stat-rate').innerText()), POLL).toBeGreaterThan(0);

    // The list filters; a click selects and centres the device.
    await page.locator('#filter').fill('SIM-0007');
    await expect.poll(() => page.locator('tr[data-device]').count(), POLL).toBe(1);
    await page.locator('tr[data-device="SIM-0007"]').click();
    expect(await page.evaluate(() => (window as any).dashboard.map.selected)).toBe('SIM-0007');
    await page.locator('#filter').fill('');
    await page.locator('#fit').click();
    expect(errors).toEqual([]);
    expect(existsSync(await screenshot(page, 'dashboard'))).toBe(true);

    // A phone-sized window stacks the map over the list and keeps drawing; a zoom-out fling stops at the world.
    await page.setViewportSize({ width: 360, height: 740 });
    const onPhone = await frames();
    await expect.poll(frames, POLL).toBeGreaterThan(onPhone + 3);
    expect(await page.locator('#map').evaluate((c) => c.clientWidth)).toBeGreaterThanOrEqual(300); // not squeezed to nothing
    await page.locator('#map').hover();
    for (let i = 0; i < 150; i++) await page.mouse.wheel(0, 400);
    const zoomedOut = await frames();
    await expect.poll(frames, POLL).toBeGreaterThan(zoomedOut + 3); // still drawing, not stuck in a grid loop
    expect(existsSync(await screenshot(page, 'dashboard-phone'))).toBe(true);
    expect(cspViolations(consoleErrors)).toEqual([]);
  }, 60_000);

  it("/share-location shows the shared device with the link's expiry, then says when it expired or was revoked", async () => {
    const gw = await startGateway({ env: authEnv(keys) });
    const jwt = await mintJwt('op', { roles: ['admin'] });
    const pub = await connectPublisher(gw.mqttUrl);
    await pub.position('VAN-7', { LAT: -33.4489, LON: -70.6693, SPEED: 42 });
    const init = async (ttl: number) =>
      (await (
        await fetch(`${gw.http}/api/v1/public/share-location/init`, {
          method: 'POST',
          headers: { authorization: `Bearer ${jwt}`, 'content-type': 'application/json' },
          body: JSON.stringify({ device_id: 'VAN-7', ttl_seconds: ttl }),
        })
      ).json()) as { token: string; viewer_url: string };

    const short = await init(3);
    expect(short.viewer_url).toBe(`${gw.http}/share-location?token=${short.token}`); // on the Host the request came to
    const { page, consoleErrors } = await openPage(short.viewer_url);
    await expect.poll(() => page.locator('#device').innerText(), POLL).toBe('VAN-7');
    await expect.poll(() => page.locator('#position').innerText(), POLL).toBe('-33.44890, -70.66930');
    expect(await page.locator('#speed').innerText()).toBe('42 km/h');
    await expect.poll(() => page.locator('#expiry').innerText(), POLL).toMatch(/\(in 0:0\d\)$/);
    await pub.position('VAN-7', { LAT: -33.45, LON: -70.67, SPEED: 43 });
    await expect.poll(() => page.locator('#position').innerText(), POLL).toBe('-33.45000, -70.67000'); // live
    expect(existsSync(await screenshot(page, 'share-viewer'))).toBe(true);
    await expect.poll(() => page.locator('#banner').innerText(), POLL).toBe('This link has expired. Ask its owner for a new one.');
    expect(await page.locator('#expiry').innerText()).toBe('expired');
    expect(await page.locator('#state').innerText()).toBe('link: closed: expired');
    expect(existsSync(await screenshot(page, 'share-viewer-expired'))).toBe(true);

    const long = await init(600);
    await page.goto(long.viewer_url);
    await expect.poll(() => page.locator('#position').innerText(), POLL).toBe('-33.45000, -70.67000');
    expect(
      (
        await fetch(`${gw.http}/api/v1/public/share-location/${encodeURIComponent(long.token)}`, {
          method: 'DELETE',
          headers: { authorization: `Bearer ${jwt}` },
        })
      ).status,
    ).toBe(200);
    await expect.poll(() => page.locator('#banner').innerText(), POLL).toBe('This link was revoked by its owner.');

    await page.goto(`${gw.http}/share-location?token=v4.local.not-a-link`);
    await expect.poll(() => page.locator('#banner').innerText(), POLL).toMatch(/^This link cannot be used: /);
    expect(cspViolations(consoleErrors)).toEqual([]);
  }, 60_000);

  it('/console shows an entity_event created over REST on the channel it watches', async () => {
    const gw = await startGateway();
    const { page, consoleErrors } = await openPage(`${gw.http}/console`);
    await page.getByLabel('general', { exact: true }).uncheck();
    await page.getByLabel('sensors', { exact: true }).check();
    await page.getByRole('button', { name: 'Connect' }).click();
    await expect.poll(() => page.locator('#status').innerText(), POLL).toMatch(/^sensors: open at offset \d+/);
    const created = await fetch(`${gw.http}/api/v1/test-sensors/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ tipo: 'temperatura', modelo: 'DHT22' }),
    });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: number };
    const frame = page.locator('.frame[data-kind="entity_event"]').first();
    await expect
      .poll(
        () =>
          frame
            .locator('pre')
            .innerText()
            .catch(() => ''),
        POLL,
      )
      .toContain('"modelo": "DHT22"');
    const shown = JSON.parse(await frame.locator('pre').innerText());
    expect(shown).toMatchObject({ type: 'entity_event', entity_type: 'sensor', event_type: 'created', entity_id: id, data: { tipo: 'temperatura' } });
    expect(await frame.locator('.meta').innerText()).toMatch(/sensors · offset \d+/);
    // Hiding a kind hides its frames.
    await page.getByLabel('entity_event', { exact: true }).uncheck();
    expect(await frame.isHidden()).toBe(true);
    await page.getByLabel('entity_event', { exact: true }).check();
    expect(existsSync(await screenshot(page, 'event-console'))).toBe(true);
    expect(await page.locator('#status').evaluate((e) => getComputedStyle(e).marginTop)).toBe('12px'); // its style moved to style.css
    expect(cspViolations(consoleErrors)).toEqual([]);
  }, 60_000);

  it('regression: every page sends a Content-Security-Policy without inline script, nosniff and frame-ancestors, and its HTML has no inline script or style', async () => {
    const gw = await startGateway();
    for (const path of ['/', '/share-location', '/console']) {
      const res = await fetch(`${gw.http}${path}`);
      const csp = res.headers.get('content-security-policy') ?? '';
      expect(csp, path).toContain("script-src 'self';");
      expect(csp, path).not.toMatch(/unsafe-inline|unsafe-eval|sha256-|nonce-/);
      expect(csp, path).toContain("style-src 'self';");
      expect(csp, path).toContain(`connect-src 'self' ws://127.0.0.1:${gw.port};`); // the page's own ws: URL, no other
      expect(csp, path).toContain("frame-ancestors 'self'");
      expect(res.headers.get('x-frame-options'), path).toBe('SAMEORIGIN');
      expect(res.headers.get('x-content-type-options'), path).toBe('nosniff');
      const html = await res.text();
      for (const tag of html.match(/<script\b[^>]*>[\s\S]*?<\/script>/gi) ?? []) expect(tag, path).toMatch(/^<script type="module" src="[^"]+"><\/script>$/); // no inline script, no inline import map
      expect(html, path).not.toMatch(/<style\b|\sstyle=|\son[a-z]+=/i);
    }
    // Assets and API answers are nosniff too.
    for (const path of ['/assets/client/index.js', '/assets/pages/style.css', '/api/v1/stream/stats', '/no/such/route']) {
      expect((await fetch(`${gw.http}${path}`)).headers.get('x-content-type-options'), path).toBe('nosniff');
    }
  });
});
