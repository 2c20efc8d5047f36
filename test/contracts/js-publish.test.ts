/**
 * The shared-inbox JetStream publisher (contracts/js-publish.ts) against a real nats-server:
 * acknowledgements, de-duplication, the three ways a publish fails, close, an expected last
 * sequence, and reading a subject's last message back (direct get).
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
  await jsm.streams.add({ name: 'KV', subjects: ['kv.>'], allow_direct: true });
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

  it('stores a message only on the expected last sequence of its subject', async () => {
    const p = createJsPublisher(nc);
    const first = await p.publish('kv.once', bytes('a'), { expectLastSubjectSequence: 0 });
    const refused = await p.publish('kv.once', bytes('b'), { expectLastSubjectSequence: 0 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(refused).toBeInstanceOf(JsPublishError);
    // JetStream's "wrong last sequence" (JSStreamWrongLastSequenceErr).
    expect((refused as JsPublishError).apiCode).toBe(10071);
    const next = await p.publish('kv.once', bytes('c'), { expectLastSubjectSequence: first.seq });
    expect(next.seq).toBeGreaterThan(first.seq);
    p.close();
  });

  it("reads a subject's last message back, and nothing for a subject without one", async () => {
    const p = createJsPublisher(nc);
    await p.publish('kv.read.x', bytes('old'));
    const last = await p.publish('kv.read.x', bytes('new'));
    await p.publish('kv.read.y', bytes('other'));
    const got = await p.lastBySubject('KV', 'kv.read.x');
    expect(got?.seq).toBe(last.seq);
    expect(new TextDecoder().decode(got?.data)).toBe('new');
    expect(await p.lastBySubject('KV', 'kv.read.none')).toBeUndefined();
    p.close();
    // A stream that does not exist never answers (the server keeps direct gets of unknown
    // streams to itself): the read fails at its timeout, it does not hang.
    const quick = createJsPublisher(nc, { timeoutMs: 200 });
    await expect(quick.lastBySubject('NOPE', 'kv.read.x')).rejects.toBeInstanceOf(JsPublishError);
    quick.close();
  });
});
