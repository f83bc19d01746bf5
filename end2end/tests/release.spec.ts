import { test, expect } from '@playwright/test';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { watchConsole } from './console';
import { freePort, healthy, stop } from './own-server';

// The one-file release (`cargo xtask dist`: static, the site inside),
// started in an empty folder with nothing beside it: no LEPTOS_SITE_ROOT,
// no target/site. `cargo xtask test` builds it and names it here.
const RELEASE = process.env.ANTIBODY_RELEASE_BIN;
if (!RELEASE) {
  console.warn('\n!!! ANTIBODY_RELEASE_BIN is not set: the one-file release is NOT tested (cargo xtask test sets it)\n');
}

test.describe('the one-file release', () => {
  test.skip(!RELEASE, 'ANTIBODY_RELEASE_BIN is not set');
  let child: ChildProcess;
  let port: number;
  let folder: string;

  test.beforeAll(async () => {
    port = await freePort();
    folder = mkdtempSync(join(tmpdir(), 'antibody-release-'));
    const env = { ...process.env };
    delete env.LEPTOS_SITE_ROOT;
    child = spawn(RELEASE!, [], {
      cwd: folder,
      env: {
        ...env,
        PORT: String(port),
        ANTIBODY_SPEED: '10',
        ANTIBODY_SHUTDOWN_GRACE: '0',
        // Nobody approves in this test.
        ANTIBODY_POLICY: 'autonomous',
        RUST_LOG: 'warn',
      },
      stdio: 'ignore',
    });
    await healthy(port);
  });

  test.afterAll(async () => {
    await stop(child);
    rmSync(folder, { recursive: true, force: true });
  });

  test('loads, hydrates, fires Database Cascade and resolves, from an empty folder', async ({ page }) => {
    const errors = watchConsole(page);
    await page.goto(`http://127.0.0.1:${port}/`);
    await expect(page.locator('html')).toHaveAttribute('data-hydrated', 'true');
    await expect(page.getByTestId('connection')).toHaveAttribute('data-state', 'live');
    await page.getByRole('button', { name: 'Database Cascade', exact: true }).click();
    const resolved = page.locator('[data-testid=feed-item][data-kind=incident][data-status=resolved]');
    await expect(resolved.first()).toBeVisible({ timeout: 30_000 });
    await expect(page.getByTestId('kpi-resolved').locator('.kpi-value')).toHaveText('1');
    // Its only neighbour is the database it made in the folder it started in.
    expect(readdirSync(folder)).toEqual(['data']);
    expect(errors).toEqual([]);
  });

  test('the bundle is served brotli-coded, versioned, immutable, with an ETag and a 304', async () => {
    const base = `http://127.0.0.1:${port}`;
    const page = await (await fetch(`${base}/`)).text();
    const stylesheet = page.match(/href="(\/pkg\/[0-9a-f]{16}\/antibody\.css)"/)?.[1];
    expect(stylesheet, 'the page names its versioned bundle').toBeTruthy();
    const wasm = stylesheet!.replace('antibody.css', 'antibody.wasm');
    const first = await fetch(`${base}${wasm}`, { headers: { 'accept-encoding': 'gzip, br' } });
    expect(first.status).toBe(200);
    expect(first.headers.get('content-encoding')).toBe('br');
    expect(first.headers.get('content-type')).toBe('application/wasm');
    expect(first.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    const etag = first.headers.get('etag');
    expect(etag).toMatch(/^"[0-9a-f]{32}"$/);
    await first.arrayBuffer();
    const again = await fetch(`${base}${wasm}`, { headers: { 'accept-encoding': 'br', 'if-none-match': etag! } });
    expect(again.status).toBe(304);
    // Without brotli, gzip; the page itself is never kept unasked.
    const gzip = await fetch(`${base}${wasm}`, { headers: { 'accept-encoding': 'gzip' } });
    expect(gzip.headers.get('content-encoding')).toBe('gzip');
    expect(gzip.headers.get('etag')).not.toBe(etag);
    const html = await fetch(`${base}/`);
    expect(html.headers.get('cache-control')).toBe('no-cache');
    // Swagger UI's assets are inside too, revalidated.
    const swagger = await fetch(`${base}/docs/swagger-ui.css`, { headers: { 'accept-encoding': 'br' } });
    expect(swagger.status).toBe(200);
    expect(swagger.headers.get('content-encoding')).toBe('br');
    expect(swagger.headers.get('cache-control')).toBe('no-cache');
  });
});
