import { test, expect } from '@playwright/test';
import { watchConsole } from './console';
import { freePort, startServer, stop } from './own-server';

// An alert-sourced incident's page shows what its alerts said: each alert
// as sent, the severity its label mapped to, what it did to the incident,
// and a link to its expression.
test('an incident opened by alerts shows them, and their resolution, on its page', async ({ page, request }) => {
  const errors = watchConsole(page);
  const port = await freePort();
  const server = await startServer(port, {
    speed: 10,
    env: { ANTIBODY_INTAKE_TOKEN: 'e2e-intake' },
  });
  try {
    const base = `http://127.0.0.1:${port}`;
    const deliver = (status: string, fingerprint: string, service: string) =>
      request.post(`${base}/api/alerts/alertmanager`, {
        headers: { authorization: 'Bearer e2e-intake' },
        data: {
          version: '4',
          status,
          alerts: [
            {
              status,
              fingerprint,
              startsAt: '2026-12-07T10:00:00Z',
              generatorURL: 'http://prometheus.example:9090/graph?g0.expr=up',
              labels: { alertname: 'ErrorRateObjectiveBreached', service, severity: 'critical', team: 'checkout' },
              annotations: { summary: `${service} fails 40% of its requests` },
            },
          ],
        },
      });
    const opened = await deliver('firing', 'e2e-1', 'order-service');
    expect(opened.status()).toBe(202);
    const incident: string = (await opened.json()).opened[0];
    // A neighbour in the call graph joins; then the first one resolves.
    expect((await deliver('firing', 'e2e-2', 'postgres-primary')).status()).toBe(202);
    expect((await deliver('resolved', 'e2e-1', 'order-service')).status()).toBe(202);

    await page.goto(`${base}/incidents/${incident}`);
    const alerts = page.getByTestId('alerts').locator('li');
    await expect(alerts).toHaveCount(3);
    await expect(alerts.nth(0)).toContainText('opened');
    await expect(alerts.nth(0)).toContainText('ErrorRateObjectiveBreached on order-service');
    await expect(alerts.nth(0)).toContainText('severity critical → critical');
    await expect(alerts.nth(0)).toContainText('team=checkout');
    await expect(alerts.nth(1)).toContainText('joined');
    await expect(alerts.nth(1)).toContainText('postgres-primary');
    await expect(alerts.nth(2)).toContainText('resolved');
    await expect(alerts.nth(0).getByRole('link', { name: "The alert's expression" })).toHaveAttribute(
      'href',
      'http://prometheus.example:9090/graph?g0.expr=up',
    );
    await page.screenshot({ path: 'test-results/incident-alerts.png', fullPage: true });
    expect(errors).toEqual([]);
  } finally {
    await stop(server);
  }
});
