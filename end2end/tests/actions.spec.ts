import { test, expect } from '@playwright/test';
import { watchConsole } from './console';
import { freePort, startServer, startTwin, stop } from './own-server';

// Actions out: on a standalone twin (`antibody twin serve`), each step goes
// out as a signed order. The dashboard's feed says where it went and what
// came back; the incident page shows the actuator, the exact request, the
// receipt and the outcome.
test('a step through an actuator shows its request and receipt on the feed and the incident page', async ({
  page,
  request,
}) => {
  const errors = watchConsole(page);
  const [twinPort, port] = [await freePort(), await freePort()];
  const twin = await startTwin(twinPort, { speed: 10, secret: 'e2e-secret' });
  const server = await startServer(port, {
    speed: 10,
    env: {
      ANTIBODY_TWIN_URL: `http://127.0.0.1:${twinPort}`,
      ANTIBODY_ACTUATOR_SECRET: 'e2e-secret',
      ANTIBODY_POLICY: 'autonomous',
    },
  });
  try {
    const base = `http://127.0.0.1:${port}`;
    await page.goto(base);
    await expect(page.getByTestId('connection')).toHaveAttribute('data-state', 'live');
    const injected = await request.post(`http://127.0.0.1:${twinPort}/api/faults`, {
      data: { scenario: 'database_cascade' },
    });
    expect(injected.status()).toBe(201);
    const created = await request.post(`${base}/api/incidents`, {
      data: {
        title: 'Checkout errors',
        severity: 'critical',
        affected_services: ['api-gateway', 'user-service', 'order-service'],
      },
    });
    expect(created.status()).toBe(201);
    const id: string = (await created.json()).id;

    // The feed names the actuator, the request and the receipt.
    await expect(page.getByTestId('feed')).toContainText(`twin: POST http://127.0.0.1:${twinPort}/api/actions`, {
      timeout: 60_000,
    });
    await expect(page.getByTestId('feed')).toContainText(/receipt act-\d+ succeeded/);

    await expect
      .poll(async () => (await (await request.get(`${base}/api/incidents/${id}`)).json()).incident.status, {
        timeout: 60_000,
      })
      .toBe('resolved');
    await page.goto(`${base}/incidents/${id}`);
    const out = page.getByTestId('actuations').locator('li');
    await expect(out.first()).toContainText('completed');
    await expect(out.first()).toContainText('via twin');
    await expect(out.first()).toContainText(/receipt act-\d+ succeeded/);
    await out.first().locator('summary').click();
    await expect(out.first()).toContainText(`POST http://127.0.0.1:${twinPort}/api/actions`);
    await expect(out.first()).toContainText('Idempotency-Key');
    await expect(out.first().locator('pre')).toContainText('"target": "postgres-primary"');
    await expect(out.first().locator('pre')).toContainText('"by": "policy"');
    await page.screenshot({ path: 'test-results/incident-actions-out.png', fullPage: true });
    expect(errors).toEqual([]);
  } finally {
    await stop(server);
    await stop(twin);
  }
});
