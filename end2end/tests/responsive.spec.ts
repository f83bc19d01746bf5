import { test, expect } from '@playwright/test';
import { watchConsole } from './console';
import { settleEstate } from './estate';

test.afterEach(async ({ request }) => settleEstate(request));

const PANELS = ['impact', 'approvals', 'swarm', 'health', 'scenarios', 'feed', 'timelines'];

// The dashboard at the design's four widths: nothing wider than the
// screen, every panel on it, and a screenshot of each panel kept as an
// artifact (artifacts/panels/WIDTH-PANEL.png).
for (const width of [1440, 1024, 768, 390]) {
  test(`the dashboard fits ${width} px with every panel`, async ({ page, request }) => {
    const errors = watchConsole(page);
    await page.setViewportSize({ width, height: 900 });
    // Something to show: one resolved incident.
    expect((await request.post('/api/scenarios/cache_failure/trigger')).status()).toBe(201);
    await settleEstate(request);
    await page.goto('/');
    await expect(page.getByTestId('connection')).toHaveAttribute('data-state', 'live');
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow, 'horizontal scrolling').toBeLessThanOrEqual(0);
    for (const panel of PANELS) {
      const section = page.locator(`section.panel.${panel}`);
      await expect(section).toBeVisible();
      const box = (await section.boundingBox())!;
      expect(box.x).toBeGreaterThanOrEqual(0);
      expect(box.x + box.width, `${panel} inside the viewport`).toBeLessThanOrEqual(width + 0.5);
      await section.screenshot({ path: `artifacts/panels/${width}-${panel}.png` });
    }
    await page.screenshot({ path: `artifacts/dashboard-${width}.png`, fullPage: true });
    expect(errors).toEqual([]);
  });
}

test('the analytics and history pages fit a phone', async ({ page }) => {
  const errors = watchConsole(page);
  await page.setViewportSize({ width: 390, height: 844 });
  for (const path of ['/analytics', '/incidents', '/timelines']) {
    await page.goto(path);
    await expect(page.getByRole('heading', { level: 1 })).toBeVisible();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow, `${path} scrolls sideways`).toBeLessThanOrEqual(0);
    await page.screenshot({ path: `artifacts/phone${path.replace('/', '-')}.png`, fullPage: true });
  }
  expect(errors).toEqual([]);
});
