/**
 * The allocator's configuration from the environment (`npm run worker` and `npm start` read
 * the same variables): unset ones keep the actor's defaults (`defaultAllocatorConfig`, one
 * place). Candidates are JSON, checked here, so a typo stops the worker at start with the
 * variable named rather than placing no VM at all.
 */
import { z } from 'zod';
import { defaultAllocatorConfig, type AllocatorConfig, type Candidate } from './state.ts';

const intOr = (min: number, max: number) => z.coerce.number().int().min(min).max(max).optional();

const CandidateSchema = z.strictObject({
  /** Part of VM names: short, lowercase letters and digits. */
  id: z.string().regex(/^[a-z0-9]{1,12}$/, 'id: 1–12 lowercase letters or digits'),
  tier: z.enum(['spot', 'on_demand']),
  size: z.string().regex(/^Standard_[A-Za-z0-9_]{1,60}$/, 'size: an Azure VM size (Standard_…)'),
  zone: z
    .string()
    .regex(/^[1-9]$/, 'zone: 1–9')
    .optional(),
  cores: z.number().int().min(1).max(1_024),
  quotaName: z.string().min(1).max(128),
  pricePerHourPaise: z.number().int().min(1).max(100_000_00),
});

const candidatesJson = z
  .string()
  .transform((s, ctx) => {
    try {
      return JSON.parse(s) as unknown;
    } catch {
      ctx.addIssue({ code: 'custom', message: 'not JSON: an array of candidates' });
      return z.NEVER;
    }
  })
  .pipe(
    z
      .array(CandidateSchema)
      .min(1, 'at least one candidate')
      .refine((cs) => new Set(cs.map((c) => c.id)).size === cs.length, 'candidate ids repeat'),
  )
  .optional();

/**
 * A candidate cold for 600 s after a capacity or quota error (or an eviction), usage and
 * inventory refreshed every 300 s, reconciler findings acted on after 600 s; candidates as
 * `defaultAllocatorConfig` (Spot NC4as_T4_v3, then On-Demand of the same size).
 */
export const allocatorEnvShape = {
  RESPAWN_ALLOC_COLD_SECONDS: intOr(1, 86_400),
  RESPAWN_ALLOC_REFRESH_SECONDS: intOr(10, 86_400),
  RESPAWN_ALLOC_RECONCILE_GRACE_SECONDS: intOr(0, 7 * 86_400),
  RESPAWN_ALLOC_CANDIDATES: candidatesJson,
};
type AllocatorEnv = z.infer<z.ZodObject<typeof allocatorEnvShape>>;

export type AllocatorSettings = Pick<
  AllocatorConfig,
  'candidates' | 'coldMs' | 'refreshMs' | 'reconcileGraceMs'
>;

/** What the environment sets, the actor's defaults for the rest. */
export function allocatorSettings(e: AllocatorEnv): AllocatorSettings {
  const d = defaultAllocatorConfig;
  const s = (v: number | undefined, fallback: number): number =>
    v === undefined ? fallback : v * 1_000;
  const candidates: readonly Candidate[] =
    e.RESPAWN_ALLOC_CANDIDATES?.map(({ zone, ...c }) => ({
      ...c,
      ...(zone === undefined ? {} : { zone }),
    })) ?? d.candidates;
  return {
    candidates,
    coldMs: s(e.RESPAWN_ALLOC_COLD_SECONDS, d.coldMs),
    refreshMs: s(e.RESPAWN_ALLOC_REFRESH_SECONDS, d.refreshMs),
    reconcileGraceMs: s(e.RESPAWN_ALLOC_RECONCILE_GRACE_SECONDS, d.reconcileGraceMs),
  };
}

export class AllocatorConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AllocatorConfigError';
  }
}

/** `npm start`'s reading of the same variables, with every problem named in one error. */
export function loadAllocatorSettings(env: NodeJS.ProcessEnv): AllocatorSettings {
  const r = z.object(allocatorEnvShape).safeParse(env);
  if (r.success) return allocatorSettings(r.data);
  throw new AllocatorConfigError(
    `invalid allocator configuration:\n${r.error.issues
      .map((i) => `  ${i.path.join('.')}: ${i.message}`)
      .join('\n')}`,
  );
}
