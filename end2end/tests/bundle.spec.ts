import { test, expect, type Page } from '@playwright/test';
import { watchConsole } from './console';

/** Names of the wasm files the page fetched, in order, as they arrive. */
function watchWasm(page: Page): string[] {
  const fetched: string[] = [];
  page.on('request', (r) => {
    const path = new URL(r.url()).pathname;
    if (path.endsWith('.wasm')) fetched.push(path.split('/').pop() ?? path);
  });
  return fetched;
}

test('the dashboard loads only its own code; the rest arrives when first needed', async ({ page }) => {
  const errors = watchConsole(page);
  const wasm = watchWasm(page);
  await page.goto('/');
  await expect(page.locator('html')).toHaveAttribute('data-hydrated', 'true');
  expect(wasm).toEqual(['antibody.wasm']);

  // The custom-timeline editor is a chunk of its own, fetched on opening.
  await page.getByText('Paste or upload a timeline').click();
  await expect(page.getByTestId('timeline-json')).toBeVisible();
  expect(wasm.some((name) => name.startsWith('split_custom_timeline_editor'))).toBe(true);

  // Another page's code arrives with the first client-side visit: the
  // window survives (no reload), and the page hydrates and works.
  await page.evaluate(() => ((window as unknown as { stayed: boolean }).stayed = true));
  await page.getByRole('link', { name: 'Incident history' }).click();
  await expect(page.getByRole('heading', { name: 'Incident history' })).toBeVisible();
  expect(await page.evaluate(() => (window as unknown as { stayed?: boolean }).stayed)).toBe(true);
  expect(wasm.some((name) => name.startsWith('split___incidents_route_view'))).toBe(true);
  expect(wasm.filter((name) => name === 'antibody.wasm')).toHaveLength(1);
  expect(errors).toEqual([]);
});

test('a page loaded directly fetches its code and hydrates', async ({ page }) => {
  const errors = watchConsole(page);
  const wasm = watchWasm(page);
  await page.goto('/analytics');
  await expect(page.locator('html')).toHaveAttribute('data-hydrated', 'true');
  expect(wasm[0]).toBe('antibody.wasm');
  expect(wasm.some((name) => name.startsWith('split___analytics_route_view'))).toBe(true);
  expect(wasm.some((name) => name.startsWith('split___incidents_route_view'))).toBe(false);
  expect(errors).toEqual([]);
});
