/** How money reads wherever a player sees it: integer paise in, rupees with two digits out. */

/** 123456 → "₹1234.56", 3000 → "₹30.00", -5 → "-₹0.05". */
export function rupees(paise: number): string {
  const sign = paise < 0 ? '-' : '';
  const abs = Math.abs(paise);
  return `${sign}₹${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, '0')}`;
}
