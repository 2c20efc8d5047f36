import { expect, it } from 'vitest';
import { rupees } from './money.ts';

it('writes paise as rupees with two digits, the sign before the symbol', () => {
  expect(rupees(0)).toBe('₹0.00');
  expect(rupees(3_000)).toBe('₹30.00');
  expect(rupees(9_998)).toBe('₹99.98');
  expect(rupees(123_456)).toBe('₹1234.56');
  expect(rupees(5)).toBe('₹0.05');
  expect(rupees(-5)).toBe('-₹0.05');
  expect(rupees(-2_360)).toBe('-₹23.60');
});
