import { test, expect } from '@playwright/test';
import type { ChildProcess } from 'node:child_process';
import { watchConsole } from './console';
import { freePort, startServer, stop } from './own-server';

// A demo server (ANTIBODY_DEMO=1) as a judge meets it: no token, a banner,
// history at once, incidents flowing, the autopilot deciding in plain
// sight, the primary scenarios to fire, and a second tab told why it is
// refused (one dashboard per address here).
let server: ChildProcess;
let port: number;

test.beforeAll(async () => {
  port = await freePort();
  server = await startServer(port, {
    speed: 10,
    env: {
      ANTIBODY_DEMO: 'true',
      ANTIBODY_OPERATOR_TOKEN: 'demo-operator',
      ANTIBODY_DEMO_AUTOPILOT: '6',
      ANTIBODY_WS_MAX_PER_IP: '1',
    },
  });
});

test.afterAll(async () => stop(server));

test('a viewer sees a live demo, the autopilot decide, and may fire the primary scenarios', async ({ browser }) => {
  const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  const errors = watchConsole(page);
  await page.goto(`http://127.0.0.1:${port}/`);
  await expect(page.getByTestId('demo-banner')).toContainText('simulated estate');
  await expect(page.getByTestId('connection')).toHaveAttribute('data-state', 'live');
  // The seeded cascade waits for a person; the autopilot's countdown shows.
  const card = page.getByTestId('approval').first();
  await expect(card.getByTestId('autopilot')).toContainText(/approves the proposed plan in \d+ s/);
  await page.screenshot({ path: 'artifacts/demo-autopilot.png' });
  await expect(page.getByTestId('approvals-recent')).toContainText('autopilot (demo)', { timeout: 30_000 });

  // Viewers keep the primary scenarios; the rest need the token.
  await expect(page.getByRole('button', { name: 'Database Cascade', exact: true })).toBeEnabled();
  await page.getByTestId('more-scenarios').locator('summary').click();
  await expect(page.getByRole('region', { name: 'Fire a scenario' }).getByRole('button', { name: 'Memory Leak', exact: true })).toBeDisabled();
  await expect(page.getByTestId('firing-blocked')).toContainText('one at a time, 3 a minute');
  await page.getByRole('button', { name: 'Service Down', exact: true }).click();
  await expect(page.locator('.trigger-ok')).toContainText('Opened: ');

  // A second dashboard from the same address is refused, and says why.
  const second = await browser.newPage();
  await second.goto(`http://127.0.0.1:${port}/`);
  await expect(second.getByTestId('connection')).toHaveAttribute('data-state', 'refused');
  await expect(second.getByTestId('connection')).toContainText('too many dashboards open from your address');
  await second.screenshot({ path: 'artifacts/demo-refused.png' });
  expect(errors).toEqual([]);
});
