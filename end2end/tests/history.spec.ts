import { test, expect } from '@playwright/test';
import { watchConsole } from './console';
import { settleEstate } from './estate';
import { fireScenario } from './scenarios';

test.afterEach(async ({ request }) => settleEstate(request));

// From the live dashboard to an incident's shareable page: the history is
// server-rendered from the store, and each incident has its own link.
test('an incident resolved on the dashboard has a shareable page with its whole story', async ({ page, request }) => {
  const errors = watchConsole(page);
  await page.goto('/');
  await expect(page.getByTestId('connection')).toHaveAttribute('data-state', 'live');
  await page.getByRole('button', { name: 'Service Down', exact: true }).click();
  // Policy may ask a person when the diagnosis is unsure: whoever is on
  // call approves, and the incident closes.
  await settleEstate(request);
  await expect(page.getByTestId('feed-item').filter({ hasText: 'Incident resolved' }).first()).toBeVisible();

  await page.getByRole('link', { name: 'Incident history' }).click();
  await expect(page).toHaveURL(/\/incidents$/);
  // The history is a server-rendered page, not a live one: reload until
  // the newest Service Down (ours; earlier tests fire it too) has closed.
  const row = page.getByTestId('incident-row').filter({ hasText: 'Order Service Unavailable' }).first();
  await expect(async () => {
    await page.reload();
    await expect(row).toContainText('resolved', { timeout: 1_000 });
  }).toPass({ timeout: 45_000 });
  await row.getByRole('link').click();

  await expect(page).toHaveURL(/\/incidents\/[0-9a-f-]{36}$/);
  await expect(page.getByRole('heading', { level: 1 })).toContainText('Order Service Unavailable');
  await expect(page.getByTestId('hypotheses').locator('li').first()).toBeVisible();
  await expect(page.getByTestId('steps')).toContainText('Step 1/');
  await expect(page.getByTestId('timeline')).toContainText('opened: Order Service Unavailable');
  await expect(page.getByTestId('report').getByRole('heading', { name: 'Root cause' })).toBeVisible();

  // The link is shareable: a fresh page load shows the same story, charts
  // included (drawn on the server, there at first paint).
  const url = page.url();
  await page.goto(url);
  await expect(page.getByRole('heading', { level: 1 })).toContainText('Order Service Unavailable');
  const chart = page.getByTestId('chart').filter({ hasText: 'order-service' }).first();
  await expect(chart.locator('svg')).toBeVisible();
  await expect(chart.locator('[role=img]')).toHaveAttribute('aria-label', /baseline .* peak .* last/);
  await expect(page.getByTestId('chart-marks')).toContainText('incident opened');
  await expect(page.getByTestId('chart-marks')).toContainText('Roll back deploy on order-service');
  await page.screenshot({ path: 'test-results/incident.png', fullPage: true });
  expect(errors).toEqual([]);
});

// Two faults at once: the incident's page tells each cause apart, with
// its own evidence and its own steps, the larger harm first.
test('a two-fault incident\'s page shows each cause with its evidence and steps', async ({ page, request }) => {
  const errors = watchConsole(page);
  await page.goto('/');
  await expect(page.getByTestId('connection')).toHaveAttribute('data-state', 'live');
  await fireScenario(page, 'Crash Loop + CPU Surge');
  await settleEstate(request);

  await page.goto('/incidents');
  const row = page.getByTestId('incident-row').filter({ hasText: 'Payment Pods Crash-Looping During a CPU Surge' }).first();
  await expect(async () => {
    await page.reload();
    await expect(row).toContainText('resolved', { timeout: 1_000 });
  }).toPass({ timeout: 45_000 });
  await row.getByRole('link').click();

  const causes = page.getByRole('region', { name: /Causes \(2 at once/ }).getByTestId('cause');
  await expect(causes).toHaveCount(2);
  const [crash, surge] = [causes.nth(0), causes.nth(1)];
  await expect(crash).toContainText('crash loop on payment-service');
  await expect(crash).toContainText('fixed');
  await expect(crash).toContainText(/Evidence: .*restarts/);
  await expect(crash).toContainText('Roll back deploy on payment-service');
  await expect(crash).not.toContainText('user-service');
  await expect(surge).toContainText('CPU saturation on user-service');
  await expect(surge).toContainText(/Evidence: .*cpu/);
  await expect(surge).toContainText('Scale out on user-service');
  await expect(page.getByTestId('report')).toContainText('2 causes remedied one by one');
  await page.screenshot({ path: 'test-results/incident-causes.png', fullPage: true });
  expect(errors).toEqual([]);
});

test('an open incident\'s charts grow live, and stop when it closes', async ({ page, request }) => {
  const errors = watchConsole(page);
  // Data Drift's retraining always waits for a person (the default
  // policy): time to watch.
  const fired = await request.post('/api/scenarios/data_drift/trigger');
  expect(fired.status()).toBe(201);
  const incident: string = (await fired.json()).id;
  let approval: { approval_id: string } | undefined;
  await expect(async () => {
    const pending = await (await request.get('/api/approvals?state=pending')).json();
    approval = pending.find((a: { incident_id: string }) => a.incident_id === incident);
    expect(approval).toBeTruthy();
  }).toPass({ timeout: 30_000 });

  await page.goto(`/incidents/${incident}`);
  const telemetry = page.getByRole('region', { name: /Telemetry/ });
  await expect(telemetry.locator('.live-tag')).toHaveText('live');
  const readings = async () =>
    Number(await telemetry.getByTestId('chart').first().locator('[role=img]').evaluate((el) => el.querySelectorAll('polyline, path').length));
  expect(await readings()).toBeGreaterThan(0);
  await page.screenshot({ path: 'artifacts/incident-live-charts.png', fullPage: true });

  const decided = await request.post(`/api/approvals/${approval!.approval_id}/decision`, {
    data: { decision: 'approve', approver: 'chart watcher' },
  });
  expect(decided.status()).toBe(200);
  // The page polls: the steps appear as marks, then the live tag goes.
  await expect(page.getByTestId('chart-marks')).toContainText('Approved by chart watcher');
  await expect(page.getByTestId('chart-marks')).toContainText('Trigger retraining on ml-model-service');
  await expect(telemetry.locator('.live-tag')).toHaveCount(0, { timeout: 30_000 });
  await expect(page.getByTestId('chart-marks')).toContainText('incident resolved');
  expect(errors).toEqual([]);
});
