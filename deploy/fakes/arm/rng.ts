/** A small seeded generator, so a fake started with the same seed hands out the same ids. */
export interface Rng {
  /** A float in [0, 1). */
  next(): number;
  hex(chars: number): string;
  uuid(): string;
}

export function createRng(seed: number): Rng {
  // mulberry32: tiny, fast, good enough for ids in a test double.
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const hex = (chars: number): string => {
    let out = '';
    while (out.length < chars) out += Math.floor(next() * 16).toString(16);
    return out;
  };
  return {
    next,
    hex,
    uuid: () => `${hex(8)}-${hex(4)}-4${hex(3)}-a${hex(3)}-${hex(12)}`,
  };
}
