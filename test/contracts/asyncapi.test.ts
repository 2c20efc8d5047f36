/**
 * The AsyncAPI document other services read (docs/asyncapi.json) is generated from contracts/
 * and kept in sync: it lists every message definition, every reference in it resolves, its
 * payloads are JSON Schemas equivalent to the zod ones, and its channels are the subjects the
 * builders produce and the streams store.
 */
import { readFile } from 'node:fs/promises';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import * as contracts from '../../contracts/index.ts';
import {
  Catalog,
  DeadLetterRoute,
  RawCatalog,
  SessionStop,
  allStreams,
  partitionOf,
  type CatalogRoute,
  type MessageDef,
} from '../../contracts/index.ts';
import {
  ASYNCAPI_FILE,
  buildAsyncApi,
  channelId,
  renderAsyncApi,
} from '../../deploy/asyncapi/generate.ts';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function isMessageDef(v: unknown): v is MessageDef {
  return (
    isObj(v) &&
    typeof v.type === 'string' &&
    typeof v.encode === 'function' &&
    typeof v.decode === 'function' &&
    v.schema !== undefined
  );
}

/** Resolves a local `#/a/b` reference in the document, or undefined. */
function resolve(doc: Obj, ref: string): unknown {
  if (!ref.startsWith('#/')) return undefined;
  let at: unknown = doc;
  for (const raw of ref.slice(2).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (!isObj(at) || !(key in at)) return undefined;
    at = at[key];
  }
  return at;
}

function refsIn(v: unknown, out: string[] = []): string[] {
  if (Array.isArray(v)) for (const x of v) refsIn(x, out);
  else if (isObj(v)) {
    for (const [k, x] of Object.entries(v)) {
      if (k === '$ref' && typeof x === 'string') out.push(x);
      else refsIn(x, out);
    }
  }
  return out;
}

/** NATS subject matching with `*` and `>`. */
function matches(filter: string, subject: string): boolean {
  const f = filter.split('.');
  const s = subject.split('.');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '>') return s.length > i;
    if (i >= s.length || (f[i] !== '*' && f[i] !== s[i])) return false;
  }
  return f.length === s.length;
}

/** A concrete subject for a channel address: each parameter gets a valid token (or its enum's first). */
function sample(r: CatalogRoute): string {
  return r.channel.replace(/\{([A-Za-z]+)\}/g, (_, p: string) => r.enums?.[p]?.[0] ?? 'p42');
}

const allRoutes: CatalogRoute[] = [
  ...Catalog.flatMap((e) => e.routes),
  ...RawCatalog.map((e) => e.route),
  DeadLetterRoute,
];

describe('the checked-in AsyncAPI document', () => {
  it('is what the generator makes from contracts/ now', async () => {
    const [fresh, stored] = await Promise.all([
      renderAsyncApi(),
      readFile(ASYNCAPI_FILE, 'utf8').catch(() => ''),
    ]);
    expect(stored === fresh, 'docs/asyncapi.json is out of date: run npm run asyncapi').toBe(true);
  });

  it('is the same on every run (sorted keys)', async () => {
    expect(await renderAsyncApi()).toBe(await renderAsyncApi());
    const doc = buildAsyncApi();
    const keys = Object.keys(doc.channels as Obj);
    expect(keys).toEqual([...keys].sort());
  });
});

describe('the catalog', () => {
  const exported = Object.entries(contracts).filter(([, v]) => isMessageDef(v)) as [
    string,
    MessageDef,
  ][];

  it('lists every message definition contracts/index.ts exports, once, by its export name', () => {
    expect(exported.length).toBeGreaterThan(40);
    const missing = exported
      .filter(([name, def]) => !Catalog.some((e) => e.name === name && e.schema === def.schema))
      .map(([name]) => name);
    expect(missing, 'add these to contracts/catalog.ts').toEqual([]);
    const names = Catalog.map((e) => e.name);
    expect(new Set(names).size).toBe(names.length);
    const unknown = Catalog.filter((e) => !exported.some(([n]) => n === e.name)).map((e) => e.name);
    expect(unknown, 'catalog entries contracts/index.ts does not export').toEqual([]);
  });

  it('puts every route on a subject its stream stores', () => {
    const streams = new Map(allStreams().map((s) => [s.name, s.subjects]));
    for (const r of allRoutes) {
      const subject = sample(r);
      const tokens = subject.split('.');
      const stored = tokens[3] === 'cmd' ? `${subject}.${partitionOf(tokens[2] ?? '')}` : subject;
      const filters = streams.get(r.stream);
      expect(filters, `${r.channel}: unknown stream ${r.stream}`).toBeDefined();
      expect(
        filters!.some((f) => matches(f, stored)),
        `${r.channel} (${stored}) is not stored by ${r.stream}`,
      ).toBe(true);
      expect(r.publishers.length, `${r.channel} has no publisher`).toBeGreaterThan(0);
    }
  });

  it('uses the command subjects the builders make', () => {
    for (const r of allRoutes.filter((x) => x.channel.split('.')[3] === 'cmd')) {
      const [, kind, , , verb] = sample(r).split('.');
      const parsed = contracts.parseCmdSubject(sample(r));
      expect(contracts.cmdSubject(parsed.kind, 'p42', parsed.verb)).toBe(
        `respawn.${kind}.p42.cmd.${verb}`,
      );
    }
  });
});

describe('the document is structurally valid AsyncAPI 3.0.0', () => {
  const doc = buildAsyncApi();
  const channels = doc.channels as Obj;
  const operations = doc.operations as Obj;
  const messages = (doc.components as Obj).messages as Obj;

  it('declares 3.0.0, info and a nats server', () => {
    expect(doc.asyncapi).toBe('3.0.0');
    const info = doc.info as Obj;
    expect(typeof info.title).toBe('string');
    expect(typeof info.version).toBe('string');
    const nats = (doc.servers as Obj).nats as Obj;
    expect(nats.protocol).toBe('nats');
    expect(typeof nats.host).toBe('string');
  });

  it('resolves every $ref in the document', () => {
    const broken = refsIn(doc).filter((r) => resolve(doc, r) === undefined);
    expect(broken).toEqual([]);
  });

  it('gives every channel its parameters and known messages', () => {
    for (const [id, raw] of Object.entries(channels)) {
      const ch = raw as Obj;
      expect(id).toMatch(/^[A-Za-z0-9_-]+$/);
      expect(channelId(ch.address as string)).toBe(id);
      const params = [...(ch.address as string).matchAll(/\{([A-Za-z]+)\}/g)].map((m) => m[1]);
      expect(Object.keys((ch.parameters as Obj | undefined) ?? {}).sort()).toEqual(params.sort());
      for (const m of Object.values(ch.messages as Obj)) {
        expect(resolve(doc, (m as Obj).$ref as string)).toBeDefined();
      }
    }
  });

  it('points every operation at an existing channel and at messages of that channel', () => {
    expect(Object.keys(operations).length).toBeGreaterThan(0);
    for (const [id, raw] of Object.entries(operations)) {
      const op = raw as Obj;
      expect(['send', 'receive'], id).toContain(op.action);
      const chRef = (op.channel as Obj).$ref as string;
      expect(chRef.startsWith('#/channels/'), id).toBe(true);
      expect(resolve(doc, chRef), `${id}: ${chRef}`).toBeDefined();
      for (const m of op.messages as Obj[]) {
        const ref = m.$ref as string;
        expect(ref.startsWith(`${chRef}/messages/`), `${id}: ${ref}`).toBe(true);
        expect(resolve(doc, ref), `${id}: ${ref}`).toBeDefined();
      }
    }
  });

  it('has a JSON Schema object as every payload and headers', () => {
    const ajv = new Ajv({ strict: false, validateFormats: false });
    for (const [name, raw] of Object.entries(messages)) {
      const m = raw as Obj;
      expect(isObj(m.payload), name).toBe(true);
      expect(ajv.validateSchema(m.payload as Obj), `${name} payload`).toBe(true);
      expect((m.headers as Obj).type, name).toBe('object');
      expect(ajv.validateSchema(m.headers as Obj), `${name} headers`).toBe(true);
    }
  });

  it('lists the documented headers, the type per message, and the dead-letter headers on DLQ', () => {
    const h = (name: string) => ((messages[name] as Obj).headers as Obj).properties as Obj;
    const stop = h('SessionStop');
    for (const n of ['Nats-Msg-Id', 'traceparent', 'Respawn-Causation-Id'])
      expect(stop).toHaveProperty([n]);
    expect(stop['Respawn-Type']).toMatchObject({ const: 'session.stop.v1' });
    const dlq = h('DeadLetter');
    for (const n of Object.values(contracts.HeaderNames)) expect(dlq).toHaveProperty([n]);
    expect(stop).not.toHaveProperty(['Respawn-Dlq-Code']);
    const dlqChannel = channels[channelId(DeadLetterRoute.channel)] as Obj;
    expect(dlqChannel.address).toBe('respawn.dlq.{origin}.{code}');
  });

  it('validates a payload the way the zod schema does', () => {
    const ajv = new Ajv({ strict: false, validateFormats: false });
    ajv.addSchema(doc, 'doc');
    const validate = ajv.getSchema('doc#/components/messages/SessionStop/payload');
    expect(validate).toBeDefined();
    const good = { type: 'session.stop.v1', requestedBy: 'operator', reason: 'operator' };
    const bad = { type: 'session.stop.v1', requestedBy: 'support-bot' };
    expect(validate!(good)).toBe(SessionStop.schema.safeParse(good).success);
    expect(validate!(bad)).toBe(SessionStop.schema.safeParse(bad).success);
    expect(validate!(good)).toBe(true);
    const timer = ajv.getSchema('doc#/components/messages/TimerFired/payload');
    const fired = {
      type: 'runtime.timer.v1',
      timerId: '1',
      name: 'x',
      dueAt: '2026-01-01T00:00:00Z',
      firedAt: '2026-01-01T00:00:00Z',
      data: { a: [1, null] },
    };
    expect(timer!(fired)).toBe(true);
  });
});
