import { test, expect, type APIRequestContext, type Page } from '@playwright/test';
import { watchConsole } from './console';
import { fireScenario } from './scenarios';
import { settleEstate } from './estate';

test.afterEach(async ({ request }) => settleEstate(request));

/** Fires `label` and returns the incident's id, from its approval card. */
async function fireNeedingApproval(page: Page, label: string, title: string) {
  await fireScenario(page, label);
  const card = page.getByTestId('approval').filter({ hasText: title }).first();
  await expect(card).toBeVisible();
  return { card, incident: (await card.getAttribute('data-incident'))! };
}

test('a rejected plan never runs, and the incident page shows who said no', async ({ page, request }) => {
  const errors = watchConsole(page);
  await page.goto('/');
  await expect(page.getByTestId('connection')).toHaveAttribute('data-state', 'live');
  const { card, incident } = await fireNeedingApproval(page, 'Data Drift', 'Credit Score Distribution Drift');
  // Seed 001's decision support: the proposal and its alternatives, each
  // with a probability and a time, and the evidence behind them.
  await expect(card).toContainText('destructive-actions-need-a-person');
  await expect(card).toContainText('Trigger retraining on ml-model-service');
  await expect(card.locator('.option-figures').first()).toContainText(/\d+% likely to heal · ~\d+ s/);
  await expect(card).toContainText('Asking on-call SRE (1 of 2)');
  await card.getByText(/^Evidence \(\d+\)$/).click();
  await expect(card.locator('.approval-evidence li').first()).toBeVisible();

  await card.getByTestId('approver').fill('Rita Reviewer');
  await card.getByTestId('approval-comment').fill('not during the sale');
  await card.getByRole('button', { name: 'Reject' }).click();
  await expect(page.getByTestId('approvals-recent')).toContainText('Rejected by Rita Reviewer');

  // A person said no: nothing runs, and the incident goes to people.
  const mine = page.locator(`[data-testid=feed-item][data-incident="${incident}"]`);
  await expect(mine.and(page.locator('[data-kind=incident][data-status=failed]'))).toHaveCount(1);
  await expect(mine.filter({ hasText: 'Step 1/' })).toHaveCount(0);

  await page.goto(`/incidents/${incident}`);
  const audit = page.getByTestId('audit');
  await expect(audit).toContainText('Rita Reviewer');
  await expect(audit.locator('[data-kind=approval_decided]')).toContainText('rejected');
  await expect(audit.locator('[data-kind=approval_decided]')).toContainText('not during the sale');
  await expect(page.getByTestId('report')).toContainText('Rejected by Rita Reviewer');
  await page.screenshot({ path: 'artifacts/incident-rejected.png', fullPage: true });
  expect(errors).toEqual([]);

  // The drift is still there (nobody fixed it): fix it, over the API, so
  // the tests after this one meet a healthy estate.
  await approveNextDataDrift(request);
});

/** Fires Data Drift over the API, approves its retraining, and waits for
 * the incident to resolve. */
async function approveNextDataDrift(request: APIRequestContext, approve?: (incident: string) => Promise<void>) {
  const fired = await request.post('/api/scenarios/data_drift/trigger');
  expect(fired.status()).toBe(201);
  const incident: string = (await fired.json()).id;
  if (approve) {
    await approve(incident);
  } else {
    let approval: { approval_id: string } | undefined;
    await expect(async () => {
      const pending = await (await request.get('/api/approvals?state=pending')).json();
      approval = pending.find((a: { incident_id: string }) => a.incident_id === incident);
      expect(approval).toBeTruthy();
    }).toPass({ timeout: 30_000 });
    const decided = await request.post(`/api/approvals/${approval!.approval_id}/decision`, {
      data: { decision: 'approve', approver: 'test cleanup' },
    });
    expect(decided.status()).toBe(200);
  }
  await expect(async () => {
    const detail = await (await request.get(`/api/incidents/${incident}`)).json();
    expect(detail.incident.status).toBe('resolved');
  }).toPass({ timeout: 30_000 });
  return incident;
}

test.describe('without JavaScript', () => {
  test.use({ javaScriptEnabled: false });

  test('an approval is decided through the plain form', async ({ page, request }) => {
    const incident = await approveNextDataDrift(request, async (incident) => {
      await expect(async () => {
        await page.goto('/');
        await expect(page.locator(`[data-testid=approval][data-incident="${incident}"]`)).toBeVisible({ timeout: 1_000 });
      }).toPass({ timeout: 30_000 });
      const card = page.locator(`[data-testid=approval][data-incident="${incident}"]`);
      await card.getByTestId('approver').fill('Nora No-Script');
      await card.getByRole('button', { name: 'Approve' }).click();
      await page.waitForLoadState('load');
    });
    const trail = await (await request.get(`/api/audit?incident_id=${incident}`)).json();
    expect(trail.some((e: { actor: string; decision: string }) => e.actor === 'Nora No-Script' && e.decision === 'approved')).toBe(true);
  });
});
