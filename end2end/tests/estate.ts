import { expect, type APIRequestContext } from '@playwright/test';

/**
 * Leaves the shared estate as a test found it: approves whatever plan still
 * waits for a person (the default policy asks for some), then waits until
 * no incident is open. Tests share one server and one simulated estate, so
 * a fault left behind would mislead the next test's diagnosis.
 */
export async function settleEstate(request: APIRequestContext) {
  await expect(async () => {
    const pending = await (await request.get('/api/approvals?state=pending')).json();
    for (const approval of pending) {
      await request.post(`/api/approvals/${approval.approval_id}/decision`, {
        data: { decision: 'approve', approver: 'test cleanup' },
      });
    }
    const metrics = await (await request.get('/api/metrics')).json();
    expect(metrics.incidents_active).toBe(0);
  }).toPass({ timeout: 90_000, intervals: [250] });
}
