import { test, expect } from '@playwright/test';
import { watchConsole } from './console';
import { settleEstate } from './estate';

test.afterEach(async ({ request }) => settleEstate(request));

// The timelines panel: a built-in timeline's schedule previews as it is
// chosen; a pasted timeline is checked field by field, then runs live to
// a scored end that every dashboard sees.
test('a pasted timeline is checked field by field, then runs live to a score', async ({ page }) => {
  const errors = watchConsole(page);
  await page.goto('/');
  await expect(page.getByTestId('connection')).toHaveAttribute('data-state', 'live');

  const panel = page.getByRole('region', { name: 'Timelines' });
  const schedule = panel.getByTestId('schedule').first();
  await expect(schedule).toContainText('memory_leak_gradual');
  await panel.locator('select[name="timeline_id"]').selectOption('incident_storm');
  await expect(schedule).toContainText('pod_crash_loop');
  await expect(schedule).toContainText('generated');

  await panel.getByText('Paste or upload a timeline').click();
  const editor = panel.getByTestId('timeline-json');
  await editor.fill(JSON.stringify({
    name: 'Browser pair', duration_minutes: 1,
    incidents: [
      { delay_seconds: -3, type: 'predefined', scenario_id: 'cache_failur' },
      { delay_seconds: 5, type: 'llm_generated' },
    ],
  }));
  await panel.getByRole('button', { name: 'Check' }).click();
  const problems = panel.getByTestId('timeline-problems');
  await expect(problems).toContainText('incidents[0].delay_seconds');
  await expect(problems).toContainText('did you mean `cache_failure`?');
  await expect(problems).toContainText('incidents[1].llm_prompt');

  await editor.fill(JSON.stringify({
    name: 'Browser pair', duration_minutes: 1,
    incidents: [
      { delay_seconds: 0, type: 'predefined', scenario_id: 'cache_failure', comment: 'first' },
      { delay_seconds: 5, type: 'llm_generated', llm_prompt: 'a memory leak in the order service', service_name: 'order-service', comment: 'second' },
    ],
  }));
  await panel.getByRole('button', { name: 'Start pasted timeline' }).click();
  const run = panel.getByTestId('timeline-run').filter({ hasText: 'Browser pair' }).first();
  await expect(run).toBeVisible();
  // A critical cache failure this wide needs a person: the facilitator
  // approves it, and the score counts the wait.
  const card = page.getByTestId('approval').filter({ hasText: 'Redis Cache Failure' }).first();
  await card.getByTestId('approver').fill('Facilitator');
  await card.getByRole('button', { name: 'Approve' }).click();
  await expect(run).toHaveAttribute('data-state', 'completed', { timeout: 45_000 });
  await expect(run.getByTestId('run-score')).toContainText('awaiting approval');
  await expect(run.getByTestId('run-score')).toContainText('Score');
  await expect(run).toContainText('Memory leak in order-service');
  await expect(run.getByRole('link').first()).toHaveAttribute('href', /\/incidents\/[0-9a-f-]{36}$/);
  await panel.screenshot({ path: 'test-results/timelines.png' });

  // A reload finds the run in the first snapshot.
  await page.reload();
  await expect(page.getByTestId('timeline-run').filter({ hasText: 'Browser pair' }).first())
    .toHaveAttribute('data-state', 'completed');
  await page.screenshot({ path: 'test-results/dashboard-timelines.png', fullPage: true });
  expect(errors).toEqual([]);
});

test('a built-in timeline starts, pauses, resumes and cancels from the dashboard', async ({ page }) => {
  await page.goto('/');
  await expect(page.getByTestId('connection')).toHaveAttribute('data-state', 'live');
  const panel = page.getByRole('region', { name: 'Timelines' });
  await panel.locator('select[name="timeline_id"]').selectOption('busy_day');
  await panel.getByLabel('Speed').first().fill('1');
  await panel.getByRole('button', { name: 'Start timeline' }).click();
  const run = panel.getByTestId('timeline-run').filter({ hasText: 'Busy Day' }).first();
  await expect(run).toHaveAttribute('data-state', 'running');
  await run.getByRole('button', { name: 'Pause' }).click();
  await expect(run).toHaveAttribute('data-state', 'paused');
  await run.getByRole('button', { name: 'Resume' }).click();
  await expect(run).toHaveAttribute('data-state', 'running');
  await run.getByRole('button', { name: 'Cancel' }).click();
  await expect(run).toHaveAttribute('data-state', 'cancelled');
  await expect(run.getByRole('button', { name: 'Pause' })).toHaveCount(0);
});

test('two runs of one timeline are compared side by side on a shareable page', async ({ page, request }) => {
  const timeline = {
    name: 'Compared pair', duration_minutes: 1,
    incidents: [
      { delay_seconds: 0, type: 'predefined', scenario_id: 'service_down', comment: 'down' },
      { delay_seconds: 2, type: 'llm_generated', llm_prompt: 'disk filling up', comment: 'disk' },
    ],
  };
  const ids: string[] = [];
  for (const seed of [1, 2]) {
    const started = await request.post('/api/timeline-runs', { data: { timeline, speed: 50, seed } });
    expect(started.status()).toBe(201);
    const run = await started.json();
    ids.push(run.run_id);
    await expect(async () => {
      const now = await (await request.get(`/api/timeline-runs/${run.run_id}`)).json();
      expect(now.state).toBe('completed');
    }).toPass({ timeout: 45_000 });
  }

  await page.goto('/timelines');
  await expect(page.getByTestId('run-row').filter({ hasText: 'Compared pair' })).toHaveCount(2);
  await page.locator('select[name="a"]').selectOption(ids[0]);
  await page.locator('select[name="b"]').selectOption(ids[1]);
  await page.getByRole('button', { name: 'Compare' }).click();
  await expect(page).toHaveURL(new RegExp(`a=${ids[0]}&b=${ids[1]}`));
  const comparison = page.getByTestId('comparison');
  await expect(comparison).toContainText('Root cause right');
  await expect(page.getByTestId('comparison-entries').locator('tbody tr')).toHaveCount(2);
  await expect(page.getByTestId('comparison-entries')).toContainText('+00:02 disk');
  await page.screenshot({ path: 'test-results/timeline-compare.png', fullPage: true });
});
