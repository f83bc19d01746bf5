import type { ConsoleMessage, Page } from '@playwright/test';

/**
 * Collects every console error and uncaught exception in the page, live:
 * the returned array fills as they happen, so assert it empty at the end.
 */
export function watchConsole(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (m: ConsoleMessage) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(e.message));
  return errors;
}
