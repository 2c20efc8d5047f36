import { describe, expect, it } from 'vitest';
import { LEASE_MS, RENEW_MS } from './ownership.ts';
import { FETCH_MARGIN_MS, MIN_FETCH_MS, WINDOW_FETCH_MS, pullExpiry } from './windowed.ts';

describe('pullExpiry', () => {
  it('never lets a pull outlive the lease it was asked under, less the margin', () => {
    for (let left = 0; left <= LEASE_MS; left += 37) {
      for (let now = 0; now < 3 * MIN_FETCH_MS; now += 53.7) {
        const e = pullExpiry(left, now);
        if (e === undefined) continue;
        expect(e).toBeLessThanOrEqual(left - FETCH_MARGIN_MS);
        expect(e).toBeGreaterThanOrEqual(MIN_FETCH_MS);
        expect(e).toBeLessThanOrEqual(WINDOW_FETCH_MS);
      }
    }
  });

  it('asks for no pull when the lease leaves less than the shortest pull', () => {
    expect(pullExpiry(MIN_FETCH_MS + FETCH_MARGIN_MS - 1, 0)).toBeUndefined();
    expect(pullExpiry(0, 500)).toBeUndefined();
    expect(pullExpiry(-200, 500)).toBeUndefined();
    expect(pullExpiry(MIN_FETCH_MS + FETCH_MARGIN_MS, 0)).toBe(MIN_FETCH_MS);
  });

  it('ends pulls on a common grid when the lease is fresh, so they expire together', () => {
    // Just renewed: pulls started anywhere in a grid period all end at the same boundary.
    const fresh = LEASE_MS - RENEW_MS / 10;
    const ends = [10_000.4, 10_250, 10_731.9, 10_999].map((now) => now + pullExpiry(fresh, now)!);
    expect(new Set(ends.map((t) => Math.round(t)))).toEqual(new Set([12_000]));
    // One started right after a boundary runs the full window.
    expect(pullExpiry(fresh, 12_000.2)).toBe(WINDOW_FETCH_MS);
  });

  it('holds a fresh owner to full-length pulls until a renewal is late', () => {
    // A renewal is due every RENEW_MS: until then the grid, not the lease, sets the expiry.
    for (let sinceRenewal = 0; sinceRenewal <= RENEW_MS; sinceRenewal += 100) {
      const e = pullExpiry(LEASE_MS - sinceRenewal, 5_000);
      expect(e).toBe(WINDOW_FETCH_MS);
    }
  });
});
