/**
 * The ingress routes under arbitrary input. A route that throws anything but a TerminalError
 * makes its router offer the message again and again (router.ts: `retry`), so input the
 * gateway stored but a route cannot read would never leave the stream. Whatever the bytes:
 * a route returns commands, each one its consumer accepts (a subject and payload the catalog
 * lists this router as a publisher of), or it throws a TerminalError (a dead letter).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AgentReport,
  Catalog,
  Components,
  TerminalError,
  type CatalogRoute,
  type Component,
} from '../../contracts/index.ts';
import { routeAgentReport } from './agent-route.ts';
import { razorpayRoute } from './razorpay.ts';
import type { IngressRoute, RoutedCommand } from './router.ts';
import { createTelegramRoute } from './telegram-route.ts';
import { pathsOf, replaced } from '../../test/support/property.ts';

const enc = new TextEncoder();
const bytes = (v: unknown): Uint8Array => enc.encode(JSON.stringify(v));
const RUNS = 1_000;

/** `respawn.session.{playerId}.cmd.stop` as a pattern of one token per parameter. */
function channelPattern(r: CatalogRoute): RegExp {
  const src = r.channel
    .split(/(\{\w+\})/)
    .map((part) => {
      const param = /^\{(\w+)\}$/.exec(part)?.[1];
      if (param === undefined) return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      const only = r.enums?.[param];
      return only === undefined ? '[^.*>\\s]+' : `(?:${only.join('|')})`;
    })
    .join('');
  return new RegExp(`^${src}$`);
}

/** What a router may publish: each catalogued message, on the subjects it lists for `who`. */
function publishable(
  who: Component,
): { pattern: RegExp; type: string; decode(d: unknown): void }[] {
  return Catalog.flatMap((e) =>
    e.routes
      .filter((r) => r.publishers.includes(who))
      .map((r) => ({
        pattern: channelPattern(r),
        type: e.type,
        decode: (d: unknown) => e.schema.parse(d),
      })),
  );
}

/** Asserts one routed command is a message its consumer takes, from this publisher. */
function expectAccepted(who: Component, c: RoutedCommand): void {
  const fits = publishable(who).filter((p) => p.pattern.test(c.subject));
  expect(fits.length, `${who} publishes nothing on ${c.subject}`).toBeGreaterThan(0);
  const payload = JSON.parse(new TextDecoder().decode(c.data)) as { type?: unknown };
  const entry = fits.find((p) => p.type === payload.type);
  expect(entry, `${String(payload.type)} is not a message of ${c.subject}`).toBeDefined();
  entry!.decode(payload);
  if (c.type !== undefined) expect(c.type).toBe(payload.type);
  expect(c.msgId).toMatch(/^[\x21-\x7e]{1,200}$/);
}

/** The route's outcome: commands (each checked), or a TerminalError; anything else fails. */
function routeOrDeadLetter(who: Component, route: IngressRoute, data: Uint8Array): void {
  let commands: readonly RoutedCommand[];
  try {
    commands = route(data, { msgId: 'in-1', headers: {}, now: new Date('2026-12-07T00:00:00Z') });
  } catch (err) {
    if (err instanceof TerminalError) return;
    throw err;
  }
  for (const c of commands) expectAccepted(who, c);
}

/** Strings a hand-written decoder might not expect: subject wildcards, huge, odd unicode. */
const nasty = fc.constantFrom(
  '',
  ' ',
  '.',
  '*',
  '>',
  'a.b',
  'p1 ',
  '-1',
  '1e3',
  '0x10',
  '9007199254740993',
  '\u0000',
  '😀',
  'x'.repeat(5_000),
  '/start@',
  '/play@@',
  'topup:0',
  'topup:99999999999',
  'stop:',
  'tier:',
  '__proto__',
);
const replacement = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  nasty,
  fc.constantFrom(undefined, null, -1, 0, 1.5, 2 ** 53, -(2 ** 31), true, [], {}),
);

/** Valid samples mutated at one path: the shapes a route sees from a changed sender. */
function mutations(samples: readonly unknown[]): fc.Arbitrary<Uint8Array> {
  return fc
    .constantFrom(...samples)
    .chain((s) => fc.tuple(fc.constant(s), fc.constantFrom(...pathsOf(s)), replacement))
    .map(([s, path, by]) => bytes(replaced(s, path, by)));
}

const anyInput = (samples: readonly unknown[]): fc.Arbitrary<Uint8Array> =>
  fc.oneof(
    { arbitrary: fc.uint8Array({ maxLength: 200 }), weight: 1 },
    { arbitrary: fc.jsonValue().map(bytes), weight: 1 },
    { arbitrary: mutations(samples), weight: 6 },
  );

/** The paths of a value's objects (not arrays, not leaves). */
const objectPaths = (v: unknown): (string | number)[][] =>
  pathsOf(v).filter((p) => {
    let at: unknown = v;
    for (const k of p) at = (at as Record<string | number, unknown>)[k];
    return at !== null && typeof at === 'object' && !Array.isArray(at);
  });

/** A sample with a field its sender might add one day, in one of its objects. */
const withNewField = (sample: unknown): fc.Arbitrary<unknown> =>
  fc
    .tuple(
      fc.constantFrom(...objectPaths(sample)),
      fc.string({
        unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz_'),
        minLength: 1,
        maxLength: 16,
      }),
      fc.jsonValue({ maxDepth: 1 }),
    )
    .filter(([path, key]) => {
      let at: unknown = sample;
      for (const k of path) at = (at as Record<string | number, unknown>)[k];
      return !(key in (at as object));
    })
    .map(([path, key, value]) => replaced(sample, [...path, key], value));

const user = { id: 7_001_234, is_bot: false, first_name: 'Asha', language_code: 'en' };
const chat = { id: 7_001_234, type: 'private', first_name: 'Asha' };
const text = (t: string) => ({
  update_id: 501,
  message: {
    message_id: 10,
    from: user,
    chat,
    date: 1_700_000_000,
    text: t,
    entities: [{ offset: 0, length: t.split(' ')[0]!.length, type: 'bot_command' }],
  },
});
const press = (data: string) => ({
  update_id: 502,
  callback_query: {
    id: '4382bfdwdsb323b2d9',
    from: user,
    message: { message_id: 55, from: { id: 1, is_bot: true }, chat, date: 1, text: 'menu' },
    chat_instance: '-1234',
    data,
  },
});
const telegramSamples = [
  ...['/start', '/play', '/stop', '/status', '/balance', '/topup', '/topup 500', '/history'].map(
    text,
  ),
  ...['/help', '/tier', '/play@respawn_bot', 'hello'].map(text),
  ...['play', 'stop', 'stop:p1-3', 'topup:50000', 'tier:spot', 'tier:any', 'balance'].map(press),
];

const NOTES = { player_id: '42', topup_id: 'r1' };
const payment = {
  entity: {
    id: 'pay_FOGsH8uHkF2FbR',
    entity: 'payment',
    amount: 50_000,
    currency: 'INR',
    status: 'captured',
    order_id: 'order_FOGs9Hz3ZaAjsm',
    method: 'upi',
    notes: NOTES,
  },
};
const event = (name: string, payload: Record<string, unknown>) => ({
  entity: 'event',
  account_id: 'acc_DKoeHMNpi0nC7k',
  event: name,
  contains: Object.keys(payload),
  payload,
  created_at: 1_596_890_208,
});
const razorpaySamples = [
  event('payment_link.paid', {
    payment_link: {
      entity: {
        id: 'plink_FOGqq3O6E5bkml',
        amount: 50_000,
        amount_paid: 50_000,
        currency: 'INR',
        status: 'paid',
        reference_id: 'rsp_abc',
        notes: NOTES,
      },
    },
    order: { entity: { id: 'order_FOGs9Hz3ZaAjsm', notes: NOTES } },
    payment,
  }),
  event('payment.captured', { payment }),
  event('payment.failed', { payment: { entity: { ...payment.entity, status: 'failed' } } }),
  event('refund.processed', {
    refund: {
      entity: {
        id: 'rfnd_FP8QHiV938haTz',
        entity: 'refund',
        amount: 10_000,
        currency: 'INR',
        payment_id: 'pay_FOGsH8uHkF2FbR',
        notes: NOTES,
        status: 'processed',
      },
    },
    payment,
  }),
];

const AT = '2026-03-01T18:00:00.000Z';
const report = {
  id: 'r1',
  vmName: 'vm-p1-1-a1-spotnc4',
  sessionId: 'p1-1',
  playerId: 'p1',
  at: AT,
};
const agentSamples = [
  { ...report, type: AgentReport.type, kind: 'ready', host: '10.0.0.4', port: 47989, pin: '1234' },
  { ...report, type: AgentReport.type, kind: 'heartbeat', lastInputAt: AT },
  { ...report, type: AgentReport.type, kind: 'preempt', eventId: 'ev-9', notBefore: AT },
];

const routes: [string, Component, IngressRoute, readonly unknown[]][] = [
  ['Telegram', Components.telegramRouter, createTelegramRoute(), telegramSamples],
  ['Razorpay', Components.razorpayRouter, razorpayRoute, razorpaySamples],
  ['agent', Components.agentRouter, (data) => [routeAgentReport(data)], agentSamples],
];

describe.each(routes)('the %s route', (_name, who, route, samples) => {
  it('routes its valid samples to messages their consumers accept', () => {
    let routed = 0;
    for (const s of samples) {
      const commands = route(bytes(s), { msgId: 'in-1', headers: {}, now: new Date() });
      for (const c of commands) expectAccepted(who, c);
      routed += commands.length;
    }
    expect(routed).toBeGreaterThanOrEqual(samples.length - 1);
  });

  it('either routes arbitrary input to accepted messages or dead-letters it, never anything else', () => {
    fc.assert(
      fc.property(anyInput(samples), (data) => routeOrDeadLetter(who, route, data)),
      { numRuns: RUNS },
    );
  });

  it('routes a valid input with a field its sender added as it routes the input without it', () => {
    const plain = (d: Uint8Array) =>
      route(d, { msgId: 'in-1', headers: {}, now: new Date(0) }).map((c) => ({
        ...c,
        data: new TextDecoder().decode(c.data),
      }));
    fc.assert(
      fc.property(
        fc.constantFrom(...samples).chain((s) => fc.tuple(fc.constant(s), withNewField(s))),
        ([sample, extended]) => {
          expect(plain(bytes(extended))).toEqual(plain(bytes(sample)));
        },
      ),
      { numRuns: RUNS },
    );
  });
});
