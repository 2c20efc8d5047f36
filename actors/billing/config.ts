/**
 * The billing actor's configuration: passed to `createBillingActor`, never read from a
 * module-level global. `loadBillingConfig(env)` builds it from environment variables,
 * validated, with a message naming the culprit.
 */
import { z } from 'zod';
import { knownTimeZone } from './format.ts';

const paise = z.number().int().safe();

export const BillingConfigSchema = z
  .object({
    /** Currency of the wallet and of every payment link (Razorpay: INR, minor unit paise). */
    currency: z.literal('INR'),
    /** Admission: the balance must cover this many minutes at the cheapest available tier. */
    minMinutes: z
      .number()
      .int()
      .min(0)
      .max(24 * 60),
    /** Minutes before credit runs out at which the player is warned, any order. */
    warnMinutes: z
      .array(
        z
          .number()
          .int()
          .min(1)
          .max(24 * 60),
      )
      .max(8),
    /** How often running meters write a settlement entry. */
    settleIntervalMs: z
      .number()
      .int()
      .min(1_000)
      .max(24 * 3_600_000),
    /** Amounts offered as buttons; all must lie within [topupMinPaise, topupMaxPaise]. */
    topupPresetsPaise: z.array(paise.positive()).max(6),
    topupMinPaise: paise.positive(),
    topupMaxPaise: paise.positive(),
    /** A payment link stops accepting payments this long after it was created. */
    linkTtlMs: z
      .number()
      .int()
      .min(16 * 60_000)
      .max(180 * 24 * 3_600_000),
    /** A top-up still unpaid this long after its creation is checked against Razorpay … */
    reconcileAfterMs: z.number().int().min(1_000),
    /** … and again at this interval, until the link has expired. */
    reconcileEveryMs: z.number().int().min(1_000),
    /** Prices shown with the balance ("≈ N minutes on Spot"); billing charges what meters say. */
    displayPricesPerHourPaise: z.object({ spot: paise.positive(), on_demand: paise.positive() }),
    /** The players' clock for times they read (history): an IANA name. */
    timeZone: z.string().refine(knownTimeZone, 'must be an IANA time zone, e.g. Asia/Kolkata'),
  })
  .refine((c) => c.topupMinPaise <= c.topupMaxPaise, {
    message: 'topupMinPaise must not exceed topupMaxPaise',
    path: ['topupMinPaise'],
  })
  .refine((c) => c.topupPresetsPaise.every((p) => p >= c.topupMinPaise && p <= c.topupMaxPaise), {
    message: 'every preset must lie within [topupMinPaise, topupMaxPaise]',
    path: ['topupPresetsPaise'],
  });
export type BillingConfig = z.infer<typeof BillingConfigSchema>;

export const defaultBillingConfig: BillingConfig = {
  currency: 'INR',
  minMinutes: 15,
  warnMinutes: [10, 5, 1],
  settleIntervalMs: 60_000,
  topupPresetsPaise: [10_000, 25_000, 50_000, 100_000],
  topupMinPaise: 10_000,
  topupMaxPaise: 1_000_000,
  linkTtlMs: 24 * 3_600_000,
  reconcileAfterMs: 15 * 60_000,
  reconcileEveryMs: 30 * 60_000,
  displayPricesPerHourPaise: { spot: 3_000, on_demand: 9_000 },
  timeZone: 'Asia/Kolkata',
};

/** Validates a configuration (e.g. a test's overrides on top of the defaults). */
export function billingConfig(over: Partial<BillingConfig> = {}): BillingConfig {
  const r = BillingConfigSchema.safeParse({ ...defaultBillingConfig, ...over });
  if (!r.success) throw new BillingConfigError(describe(r.error));
  return r.data;
}

export class BillingConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BillingConfigError';
  }
}

function describe(err: z.ZodError): string {
  return `invalid billing configuration:\n${err.issues
    .map((i) => `  ${i.path.join('.')}: ${i.message}`)
    .join('\n')}`;
}

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max).optional();
const intList = z
  .string()
  .regex(/^\s*\d+(\s*,\s*\d+)*\s*$/, 'must be a comma-separated list of integers')
  .transform((s) => s.split(',').map((x) => Number(x.trim())))
  .optional();

const EnvSchema = z.object({
  RESPAWN_BILLING_MIN_MINUTES: int(0, 24 * 60),
  RESPAWN_BILLING_WARN_MINUTES: intList,
  RESPAWN_BILLING_SETTLE_SECONDS: int(1, 24 * 3600),
  RESPAWN_BILLING_TOPUP_PRESETS_PAISE: intList,
  RESPAWN_BILLING_TOPUP_MIN_PAISE: int(1, Number.MAX_SAFE_INTEGER),
  RESPAWN_BILLING_TOPUP_MAX_PAISE: int(1, Number.MAX_SAFE_INTEGER),
  RESPAWN_BILLING_LINK_TTL_MINUTES: int(16, 180 * 24 * 60),
  RESPAWN_BILLING_RECONCILE_AFTER_SECONDS: int(1, 30 * 24 * 3600),
  RESPAWN_BILLING_RECONCILE_EVERY_SECONDS: int(1, 30 * 24 * 3600),
  RESPAWN_BILLING_SPOT_PAISE_PER_HOUR: int(1, Number.MAX_SAFE_INTEGER),
  RESPAWN_BILLING_ON_DEMAND_PAISE_PER_HOUR: int(1, Number.MAX_SAFE_INTEGER),
  RESPAWN_BILLING_TIME_ZONE: z.string().optional(),
});

/** Billing configuration from the environment; unset variables keep their defaults. */
export function loadBillingConfig(env: NodeJS.ProcessEnv): BillingConfig {
  const r = EnvSchema.safeParse(env);
  if (!r.success) throw new BillingConfigError(describe(r.error));
  const e = r.data;
  const d = defaultBillingConfig;
  return billingConfig({
    minMinutes: e.RESPAWN_BILLING_MIN_MINUTES ?? d.minMinutes,
    warnMinutes: e.RESPAWN_BILLING_WARN_MINUTES ?? d.warnMinutes,
    settleIntervalMs:
      e.RESPAWN_BILLING_SETTLE_SECONDS === undefined
        ? d.settleIntervalMs
        : e.RESPAWN_BILLING_SETTLE_SECONDS * 1000,
    topupPresetsPaise: e.RESPAWN_BILLING_TOPUP_PRESETS_PAISE ?? d.topupPresetsPaise,
    topupMinPaise: e.RESPAWN_BILLING_TOPUP_MIN_PAISE ?? d.topupMinPaise,
    topupMaxPaise: e.RESPAWN_BILLING_TOPUP_MAX_PAISE ?? d.topupMaxPaise,
    linkTtlMs:
      e.RESPAWN_BILLING_LINK_TTL_MINUTES === undefined
        ? d.linkTtlMs
        : e.RESPAWN_BILLING_LINK_TTL_MINUTES * 60_000,
    reconcileAfterMs:
      e.RESPAWN_BILLING_RECONCILE_AFTER_SECONDS === undefined
        ? d.reconcileAfterMs
        : e.RESPAWN_BILLING_RECONCILE_AFTER_SECONDS * 1000,
    reconcileEveryMs:
      e.RESPAWN_BILLING_RECONCILE_EVERY_SECONDS === undefined
        ? d.reconcileEveryMs
        : e.RESPAWN_BILLING_RECONCILE_EVERY_SECONDS * 1000,
    displayPricesPerHourPaise: {
      spot: e.RESPAWN_BILLING_SPOT_PAISE_PER_HOUR ?? d.displayPricesPerHourPaise.spot,
      on_demand:
        e.RESPAWN_BILLING_ON_DEMAND_PAISE_PER_HOUR ?? d.displayPricesPerHourPaise.on_demand,
    },
    timeZone: e.RESPAWN_BILLING_TIME_ZONE ?? d.timeZone,
  });
}
