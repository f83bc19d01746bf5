import { expect } from '@playwright/test';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';

// A server of a test's own, beside the suite's shared one: for a restart,
// or for a fresh estate that earlier tests' fixes have not changed.

const BIN = process.env.ANTIBODY_BIN ?? '../target/debug/antibody';

export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

/**
 * Starts a server of its own on `port`: on a database file in `data` if
 * given (it survives a restart), else in memory; at `speed` times real time;
 * with `env` added to its environment.
 */
export async function startServer(
  port: number,
  { data, speed, env }: { data?: string; speed: number; env?: Record<string, string> },
): Promise<ChildProcess> {
  const child = spawn(BIN, [], {
    env: {
      ...process.env,
      PORT: String(port),
      LEPTOS_SITE_ROOT: '../target/site',
      ANTIBODY_SPEED: String(speed),
      ANTIBODY_SHUTDOWN_GRACE: '0',
      ANTIBODY_DATABASE_URL: data ? `sqlite://${join(data, 'antibody.db')}` : 'sqlite::memory:',
      RUST_LOG: 'warn',
      ...env,
    },
    stdio: 'ignore',
  });
  await healthy(port);
  return child;
}

/** Waits until whatever listens on `port` answers `/healthz` with 200. */
export async function healthy(port: number) {
  await expect
    .poll(
      async () => {
        try {
          return (await fetch(`http://127.0.0.1:${port}/healthz`)).status;
        } catch {
          return 0;
        }
      },
      { timeout: 30_000 },
    )
    .toBe(200);
}

export async function stop(child: ChildProcess) {
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}


/**
 * Starts a standalone twin (`antibody twin serve`) on `port`, at `speed`
 * times real time, checking orders against `secret`.
 */
export async function startTwin(port: number, { speed, secret }: { speed: number; secret: string }): Promise<ChildProcess> {
  const child = spawn(BIN, ['twin', 'serve', '--addr', `127.0.0.1:${port}`, '--speed', String(speed)], {
    env: { ...process.env, ANTIBODY_ACTUATOR_SECRET: secret, RUST_LOG: 'warn' },
    stdio: 'ignore',
  });
  await healthy(port);
  return child;
}
