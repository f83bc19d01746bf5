import type { Page } from '@playwright/test';

/**
 * Clicks a scenario's button. The three primary scenarios are in sight; the
 * rest are in the "More scenarios" menu, opened first when the button is
 * in it.
 */
export async function fireScenario(page: Page, label: string) {
  const panel = page.getByRole('region', { name: 'Fire a scenario' });
  const button = panel.getByRole('button', { name: label, exact: true });
  if (!(await button.isVisible())) {
    await panel.getByTestId('more-scenarios').locator('summary').click();
  }
  await button.click();
}
