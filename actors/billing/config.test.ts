import { describe, expect, it } from 'vitest';
import { BillingConfigError, defaultBillingConfig, loadBillingConfig } from './config.ts';

describe('billing configuration from the environment', () => {
  it('keeps the defaults when nothing is set', () => {
    expect(loadBillingConfig({})).toEqual(defaultBillingConfig);
  });

  it('reads every variable', () => {
    const c = loadBillingConfig({
      RESPAWN_BILLING_MIN_MINUTES: '20',
      RESPAWN_BILLING_WARN_MINUTES: '15, 3',
      RESPAWN_BILLING_SETTLE_SECONDS: '30',
      RESPAWN_BILLING_TOPUP_PRESETS_PAISE: '20000,40000',
      RESPAWN_BILLING_TOPUP_MIN_PAISE: '20000',
      RESPAWN_BILLING_TOPUP_MAX_PAISE: '500000',
      RESPAWN_BILLING_LINK_TTL_MINUTES: '120',
      RESPAWN_BILLING_RECONCILE_AFTER_SECONDS: '600',
      RESPAWN_BILLING_RECONCILE_EVERY_SECONDS: '900',
      RESPAWN_BILLING_SPOT_PAISE_PER_HOUR: '4000',
      RESPAWN_BILLING_ON_DEMAND_PAISE_PER_HOUR: '12000',
      RESPAWN_BILLING_TIME_ZONE: 'Asia/Dubai',
    });
    expect(c).toEqual({
      currency: 'INR',
      minMinutes: 20,
      warnMinutes: [15, 3],
      settleIntervalMs: 30_000,
      topupPresetsPaise: [20_000, 40_000],
      topupMinPaise: 20_000,
      topupMaxPaise: 500_000,
      linkTtlMs: 120 * 60_000,
      reconcileAfterMs: 600_000,
      reconcileEveryMs: 900_000,
      displayPricesPerHourPaise: { spot: 4_000, on_demand: 12_000 },
      timeZone: 'Asia/Dubai',
    });
  });

  it.each([
    [
      'RESPAWN_BILLING_WARN_MINUTES',
      'ten',
      /RESPAWN_BILLING_WARN_MINUTES: must be a comma-separated list/,
    ],
    ['RESPAWN_BILLING_SETTLE_SECONDS', '0', /RESPAWN_BILLING_SETTLE_SECONDS/],
    ['RESPAWN_BILLING_LINK_TTL_MINUTES', '5', /RESPAWN_BILLING_LINK_TTL_MINUTES/],
    [
      'RESPAWN_BILLING_TOPUP_PRESETS_PAISE',
      '5000',
      /topupPresetsPaise: every preset must lie within/,
    ],
    ['RESPAWN_BILLING_TOPUP_MAX_PAISE', '100', /topupMinPaise must not exceed topupMaxPaise/],
    ['RESPAWN_BILLING_TIME_ZONE', 'Mars/Olympus', /timeZone: must be an IANA time zone/],
  ])('names what is wrong with %s=%s', (name, value, message) => {
    let err: unknown;
    try {
      loadBillingConfig({ [name]: value });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(BillingConfigError);
    expect((err as Error).message).toMatch(message);
  });
});
