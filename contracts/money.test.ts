import { expect, it } from 'vitest';
import { rupees } from './money.ts';

it('writes paise as rupees with two digits, the sign before the symbol', () => {
  expect(rupees(0)).toBe('₹0.00');
  expect(rupees(3_000)).toBe('₹30.00');
  expect(rupees(9_998)).toBe('₹99.98');
  expect(rupees(99_999)).toBe('₹999.99');
  expect(rupees(5)).toBe('₹0.05');
  expect(rupees(-5)).toBe('-₹0.05');
  expect(rupees(-2_360)).toBe('-₹23.60');
});

it('groups whole rupees the Indian way: thousands, then lakhs and crores', () => {
  expect(rupees(100_000)).toBe('₹1,000.00');
  expect(rupees(123_456)).toBe('₹1,234.56');
  expect(rupees(1_234_567)).toBe('₹12,345.67');
  expect(rupees(10_000_000)).toBe('₹1,00,000.00');
  expect(rupees(1_234_567_890)).toBe('₹1,23,45,678.90');
  expect(rupees(-100_000)).toBe('-₹1,000.00');
});
