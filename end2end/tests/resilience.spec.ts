import { test, expect } from '@playwright/test';
import { watchConsole } from './console';
import { settleEstate } from './estate';

test.afterEach(async ({ request }) => settleEstate(request));

// Seed 002's resilience: when WebSockets cannot get through, the dashboard
// polls the event log from the same seq, then goes back to the socket as
// soon as it can, with no entry lost or doubled.
test('with WebSockets blocked the dashboard polls, then returns to the socket', async ({ page, request }) => {
  test.setTimeout(120_000);
  const errors = watchConsole(page);
  let blocked = true;
  await page.routeWebSocket(/\/ws/, (ws) => {
    if (blocked) {
      ws.close();
    } else {
      ws.connectToServer();
    }
  });
  await page.goto('/');
  const connection = page.getByTestId('connection');
  await expect(connection).toHaveAttribute('data-state', 'polling', { timeout: 15_000 });
  await expect(connection).toHaveText('Polling');

  const fired = await request.post('/api/scenarios/cache_failure/trigger');
  expect(fired.status()).toBe(201);
  const id: string = (await fired.json()).id;
  const feed = page.getByTestId('feed');
  const mine = feed.locator(`[data-testid=feed-item][data-incident="${id}"]`);
  await expect(mine.filter({ hasText: 'Incident opened' })).toHaveCount(1, { timeout: 15_000 });
  // Policy asks a person to approve flushing the cache: the on-call does.
  await settleEstate(request);
  await expect(mine.filter({ hasText: 'Incident resolved' })).toHaveCount(1, { timeout: 15_000 });
  await expect(connection).toHaveAttribute('data-state', 'polling');
  await page.screenshot({ path: 'artifacts/polling.png' });

  // The socket is let through again: the next retry takes it.
  blocked = false;
  await expect(connection).toHaveAttribute('data-state', 'live', { timeout: 20_000 });
  // What arrived by polling is not repeated by the socket's replay, and
  // the socket carries on from there.
  await expect(mine.filter({ hasText: 'Incident opened' })).toHaveCount(1);
  await expect(mine.filter({ hasText: 'Incident resolved' })).toHaveCount(1);
  const again = await request.post('/api/scenarios/service_down/trigger');
  const second: string = (await again.json()).id;
  await expect(feed.locator(`[data-incident="${second}"]`).filter({ hasText: 'Incident opened' })).toHaveCount(1);
  expect(errors).toEqual([]);
});
