import { expect, it } from 'vitest';
import { duration } from './duration.ts';

it('reads in whole seconds, minutes, or hours and minutes, rounded down, never "0 minutes"', () => {
  expect(duration(0)).toBe('0 seconds');
  expect(duration(1_400)).toBe('1 second');
  expect(duration(59_999)).toBe('59 seconds');
  expect(duration(60_000)).toBe('1 minute');
  expect(duration(16 * 60_000 + 59_000)).toBe('16 minutes');
  expect(duration(3_600_000)).toBe('1 h');
  expect(duration(2 * 3_600_000 + 5 * 60_000)).toBe('2 h 5 min');
  expect(duration(1000 * 60_000)).toBe('16 h 40 min');
  expect(duration(-5)).toBe('0 seconds');
});
