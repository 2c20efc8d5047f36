/** How money reads wherever a player sees it: integer paise in, rupees with two digits out. */

/** Whole rupees grouped the Indian way: the last three digits, then twos (1,00,000). */
function grouped(rupees: number): string {
  const digits = String(rupees);
  if (digits.length <= 3) return digits;
  const head = digits.slice(0, -3);
  const pairs = head.replace(/\B(?=(\d{2})+$)/g, ',');
  return `${pairs},${digits.slice(-3)}`;
}

/** 123456 → "₹1,234.56", 10000000 → "₹1,00,000.00", 3000 → "₹30.00", -5 → "-₹0.05". */
export function rupees(paise: number): string {
  const sign = paise < 0 ? '-' : '';
  const abs = Math.abs(paise);
  return `${sign}₹${grouped(Math.floor(abs / 100))}.${String(abs % 100).padStart(2, '0')}`;
}
