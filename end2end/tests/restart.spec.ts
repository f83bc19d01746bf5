import { test, expect, type Page } from '@playwright/test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { watchConsole } from './console';
import { startServer, stop, freePort } from './own-server';

// Seed 002: a dashboard outlives a server restart. This test runs its own
// server (the shared one must stay up for the others) on a database file,
// kills it mid-incident, starts it again on the same file and port, and
// checks the open page ends with exactly the feed a fresh page shows.

/** One incident's feed lines, oldest first, as kind|status|text. */
async function feedOf(page: Page, incident: string): Promise<string[]> {
  const lines = await page.locator(`[data-testid=feed-item][data-incident="${incident}"]`).evaluateAll((items) =>
    items.map((i) => `${i.getAttribute('data-kind')}|${i.getAttribute('data-status')}|${i.querySelector('.feed-desc')?.textContent}`),
  );
  return lines.reverse();
}

test('a server killed mid-incident and started again: the open page resumes, its feed complete and without duplicates', async ({ browser }) => {
  test.setTimeout(150_000);
  const data = mkdtempSync(join(tmpdir(), 'antibody-restart-'));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  // Real time: an incident takes about 15 s, so the restart lands mid-way.
  let server = await startServer(port, { data, speed: 1 });
  const page = await browser.newPage();
  const errors = watchConsole(page);
  try {
    await page.goto(base);
    const connection = page.getByTestId('connection');
    await expect(connection).toHaveAttribute('data-state', 'live');

    const fired = await fetch(`${base}/api/scenarios/database_cascade/trigger`, { method: 'POST' });
    expect(fired.status).toBe(201);
    const id: string = (await fired.json()).id;
    const mine = page.locator(`[data-testid=feed-item][data-incident="${id}"]`);
    // Mid-incident: detection has finished, the rest has not.
    await expect(mine.and(page.locator('[data-kind=detection][data-status=completed]'))).toHaveCount(1, { timeout: 20_000 });
    await expect(mine.and(page.locator('[data-kind=incident][data-status=resolved]'))).toHaveCount(0);

    await stop(server);
    await expect(connection).not.toHaveAttribute('data-state', 'live', { timeout: 15_000 });
    await page.screenshot({ path: 'artifacts/restart-reconnecting.png' });

    server = await startServer(port, { data, speed: 1 });
    await expect(connection).toHaveAttribute('data-state', 'live', { timeout: 45_000 });
    // The restarted server marks what it was doing as interrupted, and the
    // page hears it.
    await expect(mine.and(page.locator('[data-kind=incident][data-status=interrupted]'))).toHaveCount(1, { timeout: 15_000 });

    // The page that lived through the restart shows the same story, line
    // for line, as a page opened now from the server's log.
    const fresh = await browser.newPage();
    await fresh.goto(base);
    await expect(fresh.getByTestId('connection')).toHaveAttribute('data-state', 'live');
    const survived = await feedOf(page, id);
    expect(survived).toEqual(await feedOf(fresh, id));
    expect(new Set(survived).size, survived.join('\n')).toBe(survived.length);

    // And the stream carries on.
    const again = await fetch(`${base}/api/scenarios/cache_failure/trigger`, { method: 'POST' });
    const second: string = (await again.json()).id;
    await expect(page.locator(`[data-testid=feed-item][data-incident="${second}"][data-kind=incident]`)).toHaveCount(1);
    await page.screenshot({ path: 'artifacts/restart-resumed.png' });
    await fresh.close();
  } finally {
    await stop(server);
    rmSync(data, { recursive: true, force: true });
  }
  // While the server was down the browser itself logged each refused
  // connection; those are the outage, not the page's errors.
  const outage = /ERR_CONNECTION_REFUSED|WebSocket connection to .* failed|Failed to load resource/;
  expect(errors.filter((e) => !outage.test(e))).toEqual([]);
});
