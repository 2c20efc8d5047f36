/**
 * The leased role's own rules, against a lease held in memory (the NATS and PostgreSQL leases
 * are tested through the roles that use them: test/gateway/sender-lease.test.ts,
 * test/azure/effects-lease.test.ts): the role stops when renewals stop succeeding, even while
 * one hangs, and starts again when a later renewal finds the lease still its own.
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { AcquireResult, Lease } from './lease.ts';
import { createLeasedRole } from './leased-role.ts';

const timing = { ttlMs: 400, renewMs: 20, fenceMs: 100 };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits for `check` (a shared machine can delay timers: no fixed sleeps). */
async function until(what: string, check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await sleep(5);
  }
}

type Mode = 'ok' | 'hang' | 'lost';

/** A lease that is always granted; `renew` does what `mode` says ('hang': until `answer`). */
function memoryLease(): Lease & {
  mode: Mode;
  answer(renewed: boolean): void;
  hanging(): number;
} {
  let hanging: ((renewed: boolean) => void)[] = [];
  const lease = {
    mode: 'ok' as Mode,
    hanging: () => hanging.length,
    answer(renewed: boolean) {
      for (const h of hanging) h(renewed);
      hanging = [];
    },
    ensure: () => Promise.resolve(),
    acquire: (): Promise<AcquireResult> => Promise.resolve({ acquired: true, takenOver: false }),
    renew: (): Promise<boolean> =>
      lease.mode === 'hang'
        ? new Promise<boolean>((r) => hanging.push(r))
        : Promise.resolve(lease.mode === 'ok'),
    release: () => Promise.resolve(),
    close: () => undefined,
  };
  return lease;
}

function role(lease: Lease) {
  const runs: string[] = [];
  const r = createLeasedRole({
    log: pino({ level: 'silent' }),
    role: 'a test role',
    lease,
    timing,
    ackWaitMs: 200,
    holder: 'test/1',
    run: () => {
      runs.push('start');
      return Promise.resolve({
        stop: () => {
          runs.push('stop');
          return Promise.resolve();
        },
      });
    },
  });
  return { r, runs };
}

describe('a leased role', () => {
  it('refuses a time to live shorter than fence plus ack_wait', () => {
    expect(() =>
      createLeasedRole({
        log: pino({ level: 'silent' }),
        role: 'x',
        lease: memoryLease(),
        timing: { ttlMs: 250, renewMs: 20, fenceMs: 100 },
        ackWaitMs: 200,
        holder: 'h',
        run: () => Promise.resolve({ stop: () => Promise.resolve() }),
      }),
    ).toThrow(/ttlMs \(250\) must be at least fenceMs \(100\) \+ the consumer's ack_wait \(200\)/);
  });

  it('stops the role fenceMs after the last renewal while a renewal hangs, and plays again when one succeeds', async () => {
    const lease = memoryLease();
    const { r, runs } = role(lease);
    await r.start();
    expect(r.active).toBe(true);
    lease.mode = 'hang';
    await until('the role paused', () => !r.active);
    expect(runs).toEqual(['start', 'stop']);
    // The hung renewal comes back: the lease was still ours, so the role runs again (after,
    // maybe, one more pause: that renewal was sent too long ago to vouch for the next fenceMs).
    lease.mode = 'ok';
    lease.answer(true);
    await until('the role runs again', () => r.active);
    expect(runs.at(-1)).toBe('start');
    await r.stop();
    expect(runs.at(-1)).toBe('stop');
  });

  it('stops the role when a renewal finds the lease lost, then takes it again', async () => {
    const lease = memoryLease();
    const { r, runs } = role(lease);
    await r.start();
    lease.mode = 'lost';
    await until('the role stopped', () => !r.active);
    lease.mode = 'ok';
    await until('the role runs again', () => r.active);
    expect(runs).toEqual(['start', 'stop', 'start']);
    await r.stop();
    expect(r.active).toBe(false);
  });

  it('stops even while a renewal hangs', async () => {
    const lease = memoryLease();
    const { r, runs } = role(lease);
    await r.start();
    lease.mode = 'hang';
    await until('a renewal hangs', () => lease.hanging() > 0);
    await r.stop();
    expect(r.active).toBe(false);
    expect(runs).toEqual(['start', 'stop']);
  });
});
