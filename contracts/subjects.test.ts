import { describe, expect, it } from 'vitest';
import { ErrorCodes, TerminalError, type ErrorCode } from './errors.ts';
import {
  ActorKinds,
  PARTITIONS,
  cmdSubject,
  dlqSubject,
  evtSubject,
  isValidToken,
  outTelegramSubject,
  parseCmdSubject,
  partitionFilter,
  partitionOf,
  type ActorKind,
} from './subjects.ts';

/** Runs fn and returns the TerminalError it threw; fails the test if it threw anything else. */
function terminalFrom(fn: () => unknown): TerminalError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(TerminalError);
    return err as TerminalError;
  }
  throw new Error('expected a TerminalError, nothing was thrown');
}

function expectTerminal(fn: () => unknown, code: ErrorCode): void {
  expect(terminalFrom(fn).code).toBe(code);
}

/**
 * Reference FNV-1a 32-bit, written independently of the product code: BigInt arithmetic
 * modulo 2^32 over the UTF-8 bytes from TextEncoder.
 */
function fnv1a32(input: string | Uint8Array): number {
  const bytes = typeof input === 'string' ? new TextEncoder().encode(input) : input;
  let h = 2166136261n;
  for (const b of bytes) {
    h ^= BigInt(b);
    h = (h * 16777619n) % 4294967296n;
  }
  return Number(h);
}

const kinds = Object.values(ActorKinds);

const badTokens: readonly [string, string][] = [
  ['a dot', 'a.b'],
  ['a star', 'a*'],
  ['a lone star', '*'],
  ['a greater-than', 'a>'],
  ['a lone greater-than', '>'],
  ['a space', 'a b'],
  ['a trailing newline', 'ab\n'],
  ['the empty string', ''],
  ['129 characters', 'x'.repeat(129)],
];

describe('subject builders', () => {
  it('cmdSubject builds respawn.<kind>.<key>.cmd.<verb>', () => {
    expect(cmdSubject('session', 'p-42_A', 'start')).toBe('respawn.session.p-42_A.cmd.start');
    expect(cmdSubject('demo', 'k1', 'add')).toBe('respawn.demo.k1.cmd.add');
  });

  it('evtSubject builds respawn.<kind>.<key>.evt.<event>', () => {
    expect(evtSubject('billing', 'acct7', 'charged')).toBe('respawn.billing.acct7.evt.charged');
  });

  it('dlqSubject builds respawn.dlq.<kind>.<code>', () => {
    expect(dlqSubject('session', ErrorCodes.invalidPayload)).toBe(
      'respawn.dlq.session.invalid_payload',
    );
  });

  it('outTelegramSubject builds respawn.out.telegram.<chatId>, negative group ids included', () => {
    expect(outTelegramSubject('12345')).toBe('respawn.out.telegram.12345');
    expect(outTelegramSubject('-1001234567890')).toBe('respawn.out.telegram.-1001234567890');
  });

  it('accepts a token of exactly 128 characters', () => {
    const key = 'k'.repeat(128);
    expect(isValidToken(key)).toBe(true);
    expect(cmdSubject('demo', key, 'add')).toBe(`respawn.demo.${key}.cmd.add`);
  });

  describe.each(badTokens)('a token with %s', (_what, bad) => {
    it('is not a valid token', () => {
      expect(isValidToken(bad)).toBe(false);
    });

    it('is rejected by cmdSubject as key and as verb with bad_subject', () => {
      expectTerminal(() => cmdSubject('demo', bad, 'add'), ErrorCodes.badSubject);
      expectTerminal(() => cmdSubject('demo', 'k1', bad), ErrorCodes.badSubject);
    });

    it('is rejected by evtSubject as key and as event with bad_subject', () => {
      expectTerminal(() => evtSubject('demo', bad, 'added'), ErrorCodes.badSubject);
      expectTerminal(() => evtSubject('demo', 'k1', bad), ErrorCodes.badSubject);
    });

    it('is rejected by dlqSubject as code with bad_subject', () => {
      expectTerminal(() => dlqSubject('demo', bad), ErrorCodes.badSubject);
    });

    it('is rejected by outTelegramSubject as chat id with bad_subject', () => {
      expectTerminal(() => outTelegramSubject(bad), ErrorCodes.badSubject);
    });
  });

  it('names the offending part in the error message', () => {
    expect(terminalFrom(() => cmdSubject('demo', 'a.b', 'add')).message).toContain('key');
    expect(terminalFrom(() => cmdSubject('demo', 'k', 'a b')).message).toContain('verb');
  });
});

describe('partitionFilter', () => {
  it.each(kinds)('builds the stored-subject filter of %s for the first and last partition', (k) => {
    expect(partitionFilter(k, 0)).toBe(`respawn.${k}.*.cmd.*.0`);
    expect(partitionFilter(k, PARTITIONS - 1)).toBe(`respawn.${k}.*.cmd.*.${PARTITIONS - 1}`);
  });

  it.each([-1, PARTITIONS, PARTITIONS + 1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])(
    'throws a RangeError for partition %s',
    (p) => {
      expect(() => partitionFilter('demo', p)).toThrow(RangeError);
    },
  );
});

describe('partitionOf', () => {
  it('the reference implementation matches the published FNV-1a 32-bit vectors', () => {
    expect(fnv1a32('')).toBe(0x811c9dc5);
    expect(fnv1a32('a')).toBe(0xe40c292c);
    expect(fnv1a32('foobar')).toBe(0xbf9cf968);
  });

  it('is FNV-1a 32-bit modulo 64 on the published vectors', () => {
    expect(partitionOf('')).toBe(0x811c9dc5 % 64);
    expect(partitionOf('a')).toBe(0xe40c292c % 64);
    expect(partitionOf('foobar')).toBe(0xbf9cf968 % 64);
    expect([partitionOf(''), partitionOf('a'), partitionOf('foobar')]).toEqual([5, 44, 40]);
  });

  it('returns the full 32-bit hash when n is 2^32', () => {
    expect(partitionOf('a', 2 ** 32)).toBe(0xe40c292c);
    expect(partitionOf('foobar', 2 ** 32)).toBe(0xbf9cf968);
  });

  it('defaults to PARTITIONS buckets and honours another n', () => {
    expect(PARTITIONS).toBe(64);
    expect(partitionOf('foobar', 7)).toBe(0xbf9cf968 % 7);
  });

  it('agrees with the reference on many ASCII keys and always lands in 0..63', () => {
    for (let i = 0; i < 500; i++) {
      const key = `player-${i}_${(i * 7919).toString(36)}`;
      const p = partitionOf(key);
      expect(p).toBe(fnv1a32(key) % 64);
      expect(Number.isInteger(p) && p >= 0 && p < 64).toBe(true);
    }
  });

  it('hashes non-ASCII keys by their UTF-8 bytes', () => {
    const keys = ['é', 'naïve', '日本語', '😀', 'Ω-key'];
    for (const key of keys) {
      expect(partitionOf(key, 2 ** 32)).toBe(fnv1a32(key));
    }
    // 'é' is U+00E9 = UTF-8 C3 A9: hashing its single code unit instead would differ.
    expect(partitionOf('é', 2 ** 32)).toBe(fnv1a32(new Uint8Array([0xc3, 0xa9])));
    expect(partitionOf('é', 2 ** 32)).not.toBe(fnv1a32(new Uint8Array([0xe9])));
  });
});

describe('parseCmdSubject', () => {
  it.each(kinds)('round-trips an unmapped %s command subject with no partition', (k) => {
    expect(parseCmdSubject(cmdSubject(k, 'key-1', 'do_it'))).toEqual({
      kind: k,
      key: 'key-1',
      verb: 'do_it',
      partition: undefined,
    });
  });

  it.each(['k1', 'a', 'foobar', 'player_42', 'X-Y-Z'])(
    'round-trips a mapped subject of key %s with its own partition',
    (key) => {
      const p = fnv1a32(key) % 64;
      expect(parseCmdSubject(`${cmdSubject('session', key, 'start')}.${p}`)).toEqual({
        kind: 'session',
        key,
        verb: 'start',
        partition: p,
      });
    },
  );

  it('rejects a partition that is not the key’s with wrong_partition', () => {
    const p = partitionOf('foobar');
    for (const wrong of [(p + 1) % 64, (p + 63) % 64, 64, 1000]) {
      expectTerminal(
        () => parseCmdSubject(`respawn.demo.foobar.cmd.add.${wrong}`),
        ErrorCodes.wrongPartition,
      );
    }
  });

  it('rejects a non-numeric partition token with wrong_partition', () => {
    for (const wrong of ['x', '-1', '4e1', '0x28']) {
      expectTerminal(
        () => parseCmdSubject(`respawn.demo.foobar.cmd.add.${wrong}`),
        ErrorCodes.wrongPartition,
      );
    }
  });

  it.each([
    ['too few tokens', 'respawn.demo.k1.cmd'],
    ['too many tokens', 'respawn.demo.k1.cmd.add.5.extra'],
    ['an event subject', 'respawn.demo.k1.evt.added'],
    ['another root', 'other.demo.k1.cmd.add'],
    ['the empty string', ''],
    ['an empty key', 'respawn.demo..cmd.add'],
    ['an empty verb', 'respawn.demo.k1.cmd.'],
    ['a wildcard key', 'respawn.demo.*.cmd.add'],
    ['a wildcard verb', 'respawn.demo.k1.cmd.>'],
    ['the ingress subject', 'respawn.in.telegram'],
  ])('rejects %s with bad_subject', (_what, subject) => {
    expectTerminal(() => parseCmdSubject(subject), ErrorCodes.badSubject);
  });

  it.each(['nope', 'Session', 'allocator', 'probe', 'dlq'])(
    'rejects the unknown actor kind %s with bad_subject',
    (kind) => {
      expectTerminal(() => parseCmdSubject(`respawn.${kind}.k1.cmd.add`), ErrorCodes.badSubject);
    },
  );

  it('accepts every declared actor kind', () => {
    const parsed: ActorKind[] = kinds.map((k) => parseCmdSubject(`respawn.${k}.k.cmd.v`).kind);
    expect(parsed).toEqual(kinds);
  });
});
