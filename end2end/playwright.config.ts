import { defineConfig } from '@playwright/test';

// The server under test: the debug build that `cargo xtask test` makes, on
// its own port, at 10x speed so an incident takes about two seconds.
const port = Number(process.env.ANTIBODY_E2E_PORT ?? 3210);

export default defineConfig({
  testDir: './tests',
  timeout: 60_000,
  expect: { timeout: 15_000 },
  workers: 1,
  reporter: [['list']],
  outputDir: 'test-results',
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    screenshot: 'only-on-failure',
    trace: 'retain-on-failure',
    // Playwright cannot download browsers here: use Debian's Chromium.
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    },
  },
  webServer: {
    command: process.env.ANTIBODY_BIN ?? '../target/debug/antibody',
    url: `http://127.0.0.1:${port}/healthz`,
    env: {
      PORT: String(port),
      LEPTOS_SITE_ROOT: '../target/site',
      ANTIBODY_SPEED: '10',
      ANTIBODY_SHUTDOWN_GRACE: '0',
      // A fresh store per run: the tests count from zero.
      ANTIBODY_DATABASE_URL: 'sqlite::memory:',
      RUST_LOG: 'warn',
    },
    reuseExistingServer: false,
    timeout: 60_000,
    stdout: 'pipe',
    stderr: 'pipe',
  },
});
