import { test, expect } from '@playwright/test';
import { watchConsole } from './console';
import { settleEstate } from './estate';

test.afterEach(async ({ request }) => settleEstate(request));

// The analytics page: seed 003's figures from the store, the trend charts
// drawn on the server, and the incident memory, which a person can export
// and clear.
test('analytics show MTTR by type with charts, and the memory can be exported and cleared', async ({ page, request }) => {
  const errors = watchConsole(page);
  for (const scenario of ['cache_failure', 'cache_failure']) {
    const fired = await request.post(`/api/scenarios/${scenario}/trigger`);
    expect(fired.status()).toBe(201);
    await settleEstate(request);
  }
  await page.goto('/');
  await page.getByRole('link', { name: 'Analytics' }).click();
  await expect(page).toHaveURL(/\/analytics$/);
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Analytics');
  await expect(page.getByTestId('mttr-row').filter({ hasText: 'cache_failure' })).toBeVisible();
  await expect(page.getByTestId('kpi')).toHaveCount(3);
  await expect(page.getByTestId('kpi').first()).toContainText('target > 95%');
  const charts = page.getByTestId('analytics-chart');
  await expect(charts).toHaveCount(2);
  await expect(charts.first().locator('svg')).toBeVisible();
  await expect(charts.first().locator('[role=img]')).toHaveAttribute('aria-label', /cache_failure: \d+ resolved/);
  await expect(page.getByTestId('memory-summary')).toContainText(/[1-9]\d* of 2000 incidents remembered/);

  const exported = await request.get('/api/memory');
  const memory = await exported.json();
  expect(memory.entries.length).toBeGreaterThanOrEqual(2);
  expect(memory.entries.some((e: { scenario_id?: string }) => e.scenario_id === 'cache_failure')).toBe(true);
  await page.screenshot({ path: 'test-results/analytics.png', fullPage: true });

  // The page hydrates once loaded and idle; Clear answers in place only
  // after that (before, it is a plain form post).
  await expect(page.locator('html')).toHaveAttribute('data-hydrated', 'true');
  await page.getByTestId('clear-memory').click();
  await expect(page.getByRole('status')).toContainText(/Forgot \d+ incident\(s\)\./);
  await expect(page.getByTestId('memory-summary')).toContainText('0 of 2000 incidents remembered');
  expect((await (await request.get('/api/memory')).json()).entries).toEqual([]);
  expect(errors).toEqual([]);
});
