/** The example browser page (examples/stream_client.html) in real headless Chromium against a real gateway. */
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { openPage, screenshot } from '../helpers/browser.js';
import { REPO_ROOT, startGateway } from '../helpers/gateway-process.js';
import { connectPublisher } from '../helpers/publisher.js';

describe('examples/stream_client.html', () => {
  it('connects, shows live positions per device and the raw frames', async () => {
    // Opened from disk, the page's Origin is `null`: allowed as examples/README.md says.
    const gw = await startGateway({ env: { GATEWAY_ALLOWED_ORIGINS: 'null' } });
    const pub = await connectPublisher(gw.mqttUrl);
    await pub.position('WEB-1', { LAT: -33.1, LON: -70.2, SPEED: 11 });
    const url = `file://${REPO_ROOT}examples/stream_client.html?url=${encodeURIComponent(`${gw.ws}/api/v1/stream`)}&device_ids=WEB-1,WEB-2`;
    const { page } = await openPage(url);
    await page.getByRole('button', { name: 'Connect', exact: true }).click();
    await page.getByText('connected (subprotocol json)').waitFor();
    // The snapshot of WEB-1 arrives first.
    await page.locator('tr', { hasText: 'WEB-1' }).getByText('-33.1').waitFor();
    await pub.position('WEB-2', { LAT: -33.2, LON: -70.3, SPEED: 22 });
    const row = page.locator('tr', { hasText: 'WEB-2' });
    await row.getByText('22', { exact: true }).waitFor();
    expect(await page.locator('body').innerText()).toContain('"event":"message"');
    expect(existsSync(await screenshot(page, 'example-stream-client'))).toBe(true);
  });
});
