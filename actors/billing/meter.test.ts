import { describe, expect, it } from 'vitest';
import {
  creditLastsMs,
  dueAt,
  openMeter,
  pauseMeter,
  resumeMeter,
  settleMeter,
  unitsAt,
} from './meter.ts';
import { T0, at } from './testkit.ts';

const S = 1000;
const t = (ms: number): Date => new Date(T0.getTime() + ms);

describe('metering arithmetic', () => {
  it('charges a 47 m 12 s session at 3000 paise/h exactly 2360 paise', () => {
    const m = openMeter('s1', 'spot', 3000, at(0));
    expect(dueAt(m, t((47 * 60 + 12) * S))).toBe(2360);
  });

  it('rounds the total down: 47 m 12 s at 3333 paise/h is 2621 paise (exact 2621.94)', () => {
    const m = openMeter('s1', 'spot', 3333, at(0));
    expect(unitsAt(m, t(2832 * S))).toBe(2832 * 3333);
    expect(dueAt(m, t(2832 * S))).toBe(2621);
  });

  it('never charges ahead of the exact amount and trails it by under one paisa at every settlement', () => {
    let m = openMeter('s1', 'spot', 3333, at(0));
    let charged = 0;
    for (let sec = 7; sec <= 3 * 3600; sec += 53) {
      const r = settleMeter(m, t(sec * S));
      m = r.meter;
      charged -= r.amountPaise;
      const exact = (sec * 3333) / 3600;
      expect(charged).toBeLessThanOrEqual(exact);
      expect(exact - charged).toBeLessThan(1);
    }
  });

  it('charges nothing for a partial second', () => {
    const m = openMeter('s1', 'spot', 3600, at(0));
    expect(dueAt(m, t(999))).toBe(0);
    expect(dueAt(m, t(1999))).toBe(1);
  });

  it('charges nothing while paused and resumes at the new tier’s price', () => {
    let m = openMeter('s1', 'spot', 3600, at(0));
    m = pauseMeter(m, t(600 * S));
    expect(dueAt(m, t(5000 * S))).toBe(600);
    m = resumeMeter(m, t(900 * S), 'on_demand', 7200);
    expect(dueAt(m, t(1000 * S))).toBe(600 + 200);
  });

  it('never resumes before the pause (a resume stamped earlier counts from the pause)', () => {
    let m = openMeter('s1', 'spot', 3600, at(0));
    m = pauseMeter(m, t(600 * S));
    m = resumeMeter(m, t(500 * S), 'spot', 3600);
    expect(m.runningSince).toBe(at(600 * S));
  });

  it('gives back what a settlement ran ahead of a later-reported pause', () => {
    let m = openMeter('s1', 'spot', 3600, at(0));
    m = settleMeter(m, t(660 * S)).meter;
    expect(m.chargedPaise).toBe(660);
    const back = settleMeter(pauseMeter(m, t(600 * S)), t(600 * S));
    expect(back.amountPaise).toBe(60);
    expect(back.n).toBe(2);
  });

  it('numbers settlements, and writes none when nothing became due', () => {
    let m = openMeter('s1', 'spot', 3600, at(0));
    const a = settleMeter(m, t(10 * S));
    m = a.meter;
    expect(a.n).toBe(1);
    expect(settleMeter(m, t(10 * S)).n).toBeUndefined();
  });

  it('knows how long credit lasts at a rate', () => {
    expect(creditLastsMs(100, 3000)).toBe(120_000);
    expect(creditLastsMs(0, 3000)).toBe(0);
    expect(creditLastsMs(-5, 3000)).toBe(0);
    expect(creditLastsMs(100, 0)).toBe(Number.POSITIVE_INFINITY);
  });
});
