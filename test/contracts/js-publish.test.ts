/**
 * The shared-inbox JetStream publisher (contracts/js-publish.ts) against a real nats-server:
 * acknowledgements, de-duplication, the three ways a publish fails, and close.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DiscardPolicy, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { JsPublishError, createJsPublisher } from '../../contracts/index.ts';
import { startNats, type NatsServerHandle } from '../harness/index.ts';

let nats: NatsServerHandle;
let nc: NatsConnection;
beforeAll(async () => {
  nats = await startNats();
  nc = await connect({ servers: nats.url, noAsyncTraces: true });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: 'PUB', subjects: ['pub.>'] });
  await jsm.streams.add({
    name: 'FULL',
    subjects: ['full.>'],
    max_msgs: 1,
    discard: DiscardPolicy.New,
  });
});
afterAll(async () => {
  await nc?.close();
  await nats?.stop();
});

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('createJsPublisher', () => {
  it('resolves with the stream and sequence, and a repeated Nats-Msg-Id as a duplicate', async () => {
    const p = createJsPublisher(nc);
    const first = await p.publish('pub.a', bytes('1'), { msgID: 'same' });
    const again = await p.publish('pub.a', bytes('1'), { msgID: 'same' });
    const other = await p.publish('pub.a', bytes('2'), { msgID: 'other' });
    expect(first).toEqual({ stream: 'PUB', seq: first.seq, duplicate: false });
    expect(again).toEqual({ stream: 'PUB', seq: first.seq, duplicate: true });
    expect(other.seq).toBe(first.seq + 1);
    const jsm = await jetstreamManager(nc);
    const stored = await jsm.streams.getMessage('PUB', { seq: first.seq });
    expect(stored?.header.get('Nats-Msg-Id')).toBe('same');
    p.close();
  });

  it('keeps each acknowledgement with its own publish when many are in flight', async () => {
    const p = createJsPublisher(nc);
    const acks = await Promise.all(
      Array.from({ length: 500 }, (_, i) => p.publish(`pub.m.${i}`, bytes(String(i)))),
    );
    const jsm = await jetstreamManager(nc);
    for (const i of [0, 137, 499]) {
      const m = await jsm.streams.getMessage('PUB', { seq: acks[i]!.seq });
      expect(m?.subject).toBe(`pub.m.${i}`);
    }
    expect(new Set(acks.map((a) => a.seq)).size).toBe(500);
    p.close();
  });

  it('rejects a subject no stream takes (no responders)', async () => {
    const p = createJsPublisher(nc);
    const err = await p.publish('nostream.x', bytes('x')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JsPublishError);
    expect((err as JsPublishError).code).toBe(503);
    p.close();
  });

  it("rejects with JetStream's error when the stream refuses the message", async () => {
    const p = createJsPublisher(nc);
    await p.publish('full.a', bytes('1'));
    const err = await p.publish('full.a', bytes('2')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JsPublishError);
    expect((err as JsPublishError).message).toMatch(/maximum messages/i);
    expect((err as JsPublishError).apiCode).toBeGreaterThan(10000);
    p.close();
  });

  it('rejects after its timeout when nothing acknowledges, and on close', async () => {
    // A plain subscriber takes the subject, so the server reports no "no responders".
    const silent = nc.subscribe('silent.>');
    const p = createJsPublisher(nc, { timeoutMs: 200 });
    const t0 = performance.now();
    const late = await p.publish('silent.a', bytes('x')).catch((e: unknown) => e);
    expect(late).toBeInstanceOf(JsPublishError);
    expect((late as JsPublishError).code).toBe(408);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(190);
    const pending = p.publish('silent.b', bytes('x'), { timeout: 60_000 });
    p.close();
    await expect(pending).rejects.toThrow(/publisher closed/);
    await expect(p.publish('pub.a', bytes('x'))).rejects.toThrow(/publisher closed/);
    silent.unsubscribe();
  });
});
