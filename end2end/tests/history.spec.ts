import { test, expect } from '@playwright/test';
import { watchConsole } from './console';
import { settleEstate } from './estate';

test.afterEach(async ({ request }) => settleEstate(request));

// From the live dashboard to an incident's shareable page: the history is
// server-rendered from the store, and each incident has its own link.
test('an incident resolved on the dashboard has a shareable page with its whole story', async ({ page }) => {
  const errors = watchConsole(page);
  await page.goto('/');
  await expect(page.getByTestId('connection')).toHaveAttribute('data-state', 'live');
  await page.getByRole('button', { name: 'Service Down' }).click();
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
  await expect(page.getByTestId('report')).toContainText('#');

  // The link is shareable: a fresh page load shows the same story.
  const url = page.url();
  await page.goto(url);
  await expect(page.getByRole('heading', { level: 1 })).toContainText('Order Service Unavailable');
  await page.screenshot({ path: 'test-results/incident.png', fullPage: true });
  expect(errors).toEqual([]);
});
