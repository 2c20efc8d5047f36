import { describe, expect, it } from 'vitest';
import {
  ErrorCodes,
  TerminalError,
  ingressConsumer,
  ingressConsumerName,
  ingressDlqSubject,
  parseStopCallbackData,
  parseTopupCallbackData,
  stopCallbackData,
  topupCallbackData,
} from '../../contracts/index.ts';

describe('ingress names', () => {
  it('dead-letters each source under respawn.dlq.<source>.<code>', () => {
    expect(ingressDlqSubject('telegram', 'invalid_json')).toBe('respawn.dlq.telegram.invalid_json');
    expect(ingressDlqSubject('agent', 'invalid_payload')).toBe('respawn.dlq.agent.invalid_payload');
  });

  it('refuses a code that would widen or break the subject', () => {
    for (const bad of ['a.b', '*', '>', 'with space', '']) {
      try {
        ingressDlqSubject('telegram', bad);
        expect.unreachable(`accepted ${JSON.stringify(bad)}`);
      } catch (err) {
        expect(err).toBeInstanceOf(TerminalError);
        expect((err as TerminalError).code).toBe(ErrorCodes.badSubject);
      }
    }
  });

  it('gives each source its own durable consumer filtered to its ingress subject', () => {
    expect(ingressConsumerName('telegram')).toBe('ingress-telegram');
    const cfg = ingressConsumer('agent');
    expect(cfg.durable_name).toBe('ingress-agent');
    expect(cfg.filter_subject).toBe('respawn.in.agent');
    expect(ingressConsumer('agent', 'custom').durable_name).toBe('custom');
    expect(() => ingressConsumer('agent', 'no.dots')).toThrow(TerminalError);
  });
});

describe('Stop button data', () => {
  it('names the session when it fits Telegram’s 64 bytes, and reads it back', () => {
    expect(stopCallbackData('4242-7')).toBe('stop:4242-7');
    expect(parseStopCallbackData(stopCallbackData('4242-7'))).toBe('4242-7');
    // Too long for callback data, or no session: the plain Stop (whatever runs).
    expect(stopCallbackData('x'.repeat(60))).toBe('stop');
    expect(stopCallbackData(undefined)).toBe('stop');
    expect(parseStopCallbackData('stop')).toBeUndefined();
    expect(parseStopCallbackData('stop:a.b')).toBeUndefined();
    expect(parseStopCallbackData('stop:')).toBeUndefined();
  });
});

describe('top-up button data', () => {
  it('round-trips an amount in paise', () => {
    expect(topupCallbackData(50_000)).toBe('topup:50000');
    expect(parseTopupCallbackData('topup:50000')).toBe(50_000);
  });

  it('reads nothing from other or malformed data', () => {
    for (const d of ['topup', 'topup:', 'topup:0', 'topup:-5', 'topup:1.5', 'topup:01', 'play']) {
      expect(parseTopupCallbackData(d)).toBeUndefined();
    }
    expect(parseTopupCallbackData('topup:99999999999')).toBeUndefined();
  });

  it('refuses to make a button for a non-positive or fractional amount', () => {
    expect(() => topupCallbackData(0)).toThrow(RangeError);
    expect(() => topupCallbackData(10.5)).toThrow(RangeError);
  });
});
