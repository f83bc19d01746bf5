import { test, expect } from '@playwright/test';

// /docs is Swagger UI over the server's own OpenAPI document, with every
// asset served locally: it must work with the network cut off.
test('the API docs page renders every endpoint offline', async ({ page }) => {
  const foreign: string[] = [];
  await page.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (url.hostname !== '127.0.0.1') {
      foreign.push(url.href);
      return route.abort();
    }
    return route.continue();
  });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));

  await page.goto('/docs');
  await expect(page.locator('.swagger-ui .info .title')).toContainText('Antibody');
  for (const path of ['/api/incidents', '/api/incidents/{id}', '/api/events', '/api/snapshot', '/api/scenarios/{id}/trigger']) {
    await expect(page.locator(`.opblock-summary-path[data-path="${path}"]`).first()).toBeVisible();
  }
  await page.screenshot({ path: 'test-results/docs.png', fullPage: false });
  expect(foreign, 'no request leaves the server').toEqual([]);
  expect(errors).toEqual([]);
});
