import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { loadLocalOptions } from '../../deploy/local/env.ts';
import { SessionConfigError, loadSessionTimings } from './config.ts';
import { defaultSessionConfig } from './state.ts';

describe('session timings from the environment', () => {
  it("keeps the actor's defaults for what is not set", () => {
    expect(loadSessionTimings({ RESPAWN_SESSION_MAX_RESUMES: '5' })).toEqual({
      idleTimeoutMs: defaultSessionConfig.idleTimeoutMs,
      idleWarningMs: defaultSessionConfig.idleWarningMs,
      heartbeatLossMs: defaultSessionConfig.heartbeatLossMs,
      provisionTimeoutMs: defaultSessionConfig.provisionTimeoutMs,
      maxResumes: 5,
      repeatReplyMs: defaultSessionConfig.repeatReplyMs,
      diskIdleMs: defaultSessionConfig.diskIdleMs,
      diskWarningMs: defaultSessionConfig.diskWarningMs,
    });
  });

  it('names each variable that is wrong', () => {
    let err: unknown;
    try {
      loadSessionTimings({
        RESPAWN_SESSION_IDLE_TIMEOUT_SECONDS: '300',
        RESPAWN_SESSION_IDLE_WARNING_SECONDS: '300',
        RESPAWN_SESSION_HEARTBEAT_LOSS_SECONDS: '5',
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SessionConfigError);
    const message = (err as Error).message;
    expect(message).toMatch(/RESPAWN_SESSION_HEARTBEAT_LOSS_SECONDS/);
    // A value out of range fails before the warning is compared; alone, the warning is named.
    expect(() =>
      loadSessionTimings({
        RESPAWN_SESSION_IDLE_TIMEOUT_SECONDS: '300',
        RESPAWN_SESSION_IDLE_WARNING_SECONDS: '300',
      }),
    ).toThrow(/RESPAWN_SESSION_IDLE_WARNING_SECONDS: must be less than the idle timeout \(300 s\)/);
  });

  it('reaches npm start, as billing’s do', () => {
    const opts = loadLocalOptions(
      { RESPAWN_SESSION_HEARTBEAT_LOSS_SECONDS: '30', RESPAWN_DISK_IDLE_DAYS: '7' },
      pino({ level: 'silent' }),
    );
    expect(opts.session).toMatchObject({ heartbeatLossMs: 30_000, diskIdleMs: 7 * 86_400_000 });
  });
});
