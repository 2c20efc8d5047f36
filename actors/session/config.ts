/**
 * The session actor's timings from the environment (`npm run worker` and `npm start` read the
 * same variables): unset ones keep the actor's defaults (`defaultSessionConfig`, one place),
 * and a warning that would not come before what it warns of is refused with its name.
 */
import { z } from 'zod';
import { defaultSessionConfig, type SessionConfig } from './state.ts';

const DAY_S = 86_400;
const intOr = (min: number, max: number) => z.coerce.number().int().min(min).max(max).optional();

/**
 * Idle stop 900 s after the last input with a warning 120 s before, a VM presumed gone after
 * 90 s without a heartbeat, a boot given up after 600 s, 3 evictions survived, a Play during a
 * session answered once in 10 s, a disk unused 30 days archived with a warning 3 days before.
 */
export const sessionEnvShape = {
  RESPAWN_SESSION_IDLE_TIMEOUT_SECONDS: intOr(60, 7 * DAY_S),
  RESPAWN_SESSION_IDLE_WARNING_SECONDS: intOr(0, DAY_S),
  RESPAWN_SESSION_HEARTBEAT_LOSS_SECONDS: intOr(10, DAY_S),
  RESPAWN_SESSION_PROVISION_TIMEOUT_SECONDS: intOr(60, DAY_S),
  RESPAWN_SESSION_MAX_RESUMES: intOr(0, 100),
  RESPAWN_SESSION_REPEAT_REPLY_SECONDS: intOr(0, 3_600),
  RESPAWN_DISK_IDLE_DAYS: intOr(1, 3_650),
  RESPAWN_DISK_WARNING_DAYS: intOr(0, 3_650),
};
type SessionEnv = z.infer<z.ZodObject<typeof sessionEnvShape>>;

export type SessionTimings = Pick<
  SessionConfig,
  | 'idleTimeoutMs'
  | 'idleWarningMs'
  | 'heartbeatLossMs'
  | 'provisionTimeoutMs'
  | 'maxResumes'
  | 'repeatReplyMs'
  | 'diskIdleMs'
  | 'diskWarningMs'
>;

/** The timings the environment sets, the actor's defaults for the rest. */
export function sessionTimings(e: SessionEnv): SessionTimings {
  const d = defaultSessionConfig;
  const s = (v: number | undefined, fallback: number): number =>
    v === undefined ? fallback : v * 1_000;
  const days = (v: number | undefined, fallback: number): number =>
    v === undefined ? fallback : v * DAY_S * 1_000;
  return {
    idleTimeoutMs: s(e.RESPAWN_SESSION_IDLE_TIMEOUT_SECONDS, d.idleTimeoutMs),
    idleWarningMs: s(e.RESPAWN_SESSION_IDLE_WARNING_SECONDS, d.idleWarningMs),
    heartbeatLossMs: s(e.RESPAWN_SESSION_HEARTBEAT_LOSS_SECONDS, d.heartbeatLossMs),
    provisionTimeoutMs: s(e.RESPAWN_SESSION_PROVISION_TIMEOUT_SECONDS, d.provisionTimeoutMs),
    maxResumes: e.RESPAWN_SESSION_MAX_RESUMES ?? d.maxResumes,
    repeatReplyMs: s(e.RESPAWN_SESSION_REPEAT_REPLY_SECONDS, d.repeatReplyMs),
    diskIdleMs: days(e.RESPAWN_DISK_IDLE_DAYS, d.diskIdleMs),
    diskWarningMs: days(e.RESPAWN_DISK_WARNING_DAYS, d.diskWarningMs),
  };
}

/** What is wrong with these timings, as [variable, message] pairs (none: fine). */
export function timingProblems(t: SessionTimings): [keyof SessionEnv, string][] {
  const out: [keyof SessionEnv, string][] = [];
  if (t.idleWarningMs >= t.idleTimeoutMs) {
    out.push([
      'RESPAWN_SESSION_IDLE_WARNING_SECONDS',
      `must be less than the idle timeout (${t.idleTimeoutMs / 1_000} s): the warning comes before the stop`,
    ]);
  }
  if (t.diskWarningMs >= t.diskIdleMs) {
    out.push([
      'RESPAWN_DISK_WARNING_DAYS',
      `must be less than RESPAWN_DISK_IDLE_DAYS (${t.diskIdleMs / (DAY_S * 1_000)}): the warning comes before the archive`,
    ]);
  }
  return out;
}

export class SessionConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SessionConfigError';
  }
}

/** The timings from an environment, validated; throws naming each variable that is wrong. */
export function loadSessionTimings(env: NodeJS.ProcessEnv): SessionTimings {
  const r = z
    .object(sessionEnvShape)
    .transform((e, ctx) => {
      const t = sessionTimings(e);
      for (const [path, message] of timingProblems(t)) {
        ctx.addIssue({ code: 'custom', path: [path], message });
      }
      return t;
    })
    .safeParse(env);
  if (r.success) return r.data;
  throw new SessionConfigError(
    `invalid session configuration:\n${r.error.issues
      .map((i) => `  ${i.path.join('.')}: ${i.message}`)
      .join('\n')}`,
  );
}
