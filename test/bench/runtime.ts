/**
 * `npm run bench:runtime [-- --json FILE] [--messages N]`: the runtime's throughput and
 * latency next to the raw rates of its parts, all measured in this run on this machine.
 *
 *  raw_js_publish_per_s   JetStream publishes, 1,000 in flight, same client library
 *  raw_js_consume_per_s   pull consume + ack of those messages
 *  raw_pg_tx_per_s        one transaction per message with the statements the runtime runs
 *                         for one message (inbox check, state lock, state upsert, inbox and
 *                         outbox inserts), one connection, sequential
 *  runtime_msgs_per_s     a backlog over 1,000 keys drained by one worker (trivial handler)
 *  runtime_p50/p99_ms     receipt → settled, per message
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { AckPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { pino } from 'pino';
import { ActorKinds, DemoAdd, cmdSubject, ensureTopology } from '../../contracts/index.ts';
import { demoActor } from '../../actors/demo/index.ts';
import {
  createWorker,
  migrate,
  openDatabase,
  systemClock,
  type ActorDefinition,
} from '../../actors/runtime/index.ts';
import { createTestDatabase, startNats } from '../harness/index.ts';

const { values: args } = parseArgs({
  options: {
    json: { type: 'string' },
    messages: { type: 'string', default: '40000' },
    keys: { type: 'string', default: '1000' },
    raw: { type: 'string', default: '100000' },
    pg: { type: 'string', default: '3000' },
  },
});
const MESSAGES = Number(args.messages);
const KEYS = Number(args.keys);
const RAW = Number(args.raw);
const PG_TX = Number(args.pg);

const out = (s: string): void => {
  process.stdout.write(`${s}\n`);
};

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

async function main(): Promise<void> {
  const nats = await startNats();
  const database = await createTestDatabase();
  const log = pino({ level: 'warn' });
  const nc = await connect({ servers: nats.url });
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  const db = await openDatabase({ url: database.url, log, poolMax: 10 });
  try {
    await migrate(db);
    out(
      `machine: ${process.platform} node ${process.version}; nats-server at ${nats.url}; db ${database.name}`,
    );

    // Raw JetStream publish.
    await jsm.streams.add({ name: 'BENCH', subjects: ['bench.>'] });
    const payload = DemoAdd.encode({ n: 1, amount: 1 });
    let t = performance.now();
    for (let i = 0; i < RAW; i += 1000) {
      const batch = [];
      for (let j = i; j < Math.min(RAW, i + 1000); j++)
        batch.push(js.publish(`bench.k${j % KEYS}`, payload));
      await Promise.all(batch);
    }
    const rawPublish = RAW / ((performance.now() - t) / 1000);

    // Raw JetStream consume + ack.
    await jsm.consumers.add('BENCH', {
      durable_name: 'raw',
      ack_policy: AckPolicy.Explicit,
      max_ack_pending: 10_000,
    });
    const consumer = await js.consumers.get('BENCH', 'raw');
    t = performance.now();
    let got = 0;
    const iter = await consumer.consume({ max_messages: 1000 });
    for await (const m of iter) {
      m.ack();
      if (++got === RAW) break;
    }
    await iter.close();
    const rawConsume = RAW / ((performance.now() - t) / 1000);
    await jsm.streams.delete('BENCH');

    // Raw PostgreSQL: the runtime's statements for one message, one transaction each.
    const knex = db.knex;
    t = performance.now();
    for (let i = 0; i < PG_TX; i++) {
      const key = `raw${i % KEYS}`;
      await knex.transaction(async (trx) => {
        await trx('rt_inbox')
          .select('msg_id')
          .where({ actor: 'bench', msg_id: `m${i}` });
        const cur = (await trx('rt_state')
          .select('version')
          .where({ actor: 'bench', key })
          .forUpdate()) as { version: number }[];
        const v = cur[0]?.version ?? 0;
        await trx('rt_state')
          .insert({ actor: 'bench', key, version: v + 1, state: '{"n":1}', updated_at: new Date() })
          .onConflict(['actor', 'key'])
          .merge(['version', 'state', 'updated_at']);
        await trx('rt_inbox').insert({
          actor: 'bench',
          msg_id: `m${i}`,
          outcome: 'ok',
          handled_at: new Date(),
        });
        await trx('rt_outbox').insert({
          subject: 'bench.x',
          msg_type: 'x',
          headers: '{}',
          data: Buffer.from(payload),
        });
      });
    }
    const rawPg = PG_TX / ((performance.now() - t) / 1000);
    await knex('rt_outbox').delete();

    // The runtime: a backlog over KEYS keys, drained by one worker.
    await ensureTopology(jsm, { consumersFor: [ActorKinds.demo] });
    for (let i = 0; i < MESSAGES; i += 1000) {
      const batch = [];
      for (let j = i; j < Math.min(MESSAGES, i + 1000); j++) {
        const key = `k${j % KEYS}`;
        batch.push(
          js.publish(
            cmdSubject(ActorKinds.demo, key, 'add'),
            DemoAdd.encode({ n: Math.floor(j / KEYS) + 1, amount: 1 }),
            { msgID: `b${j}` },
          ),
        );
      }
      await Promise.all(batch);
    }
    const latencies: number[] = [];
    let done: () => void = () => undefined;
    const finished = new Promise<void>((r) => {
      done = r;
    });
    let firstAt = 0;
    const worker = createWorker({
      nc,
      db,
      log,
      clock: systemClock,
      actors: [demoActor as unknown as ActorDefinition],
      onSettled: (_p, _o, ms) => {
        if (latencies.length === 0) firstAt = performance.now();
        latencies.push(ms);
        if (latencies.length === MESSAGES) done();
      },
    });
    await worker.start();
    await finished;
    const runtimeRate = MESSAGES / ((performance.now() - firstAt) / 1000);
    await worker.stop();
    latencies.sort((a, b) => a - b);
    const figures = {
      raw_js_publish_per_s: Math.round(rawPublish),
      raw_js_consume_per_s: Math.round(rawConsume),
      raw_pg_tx_per_s: Math.round(rawPg),
      runtime_msgs_per_s: Math.round(runtimeRate),
      runtime_p50_ms: Number(percentile(latencies, 50).toFixed(2)),
      runtime_p99_ms: Number(percentile(latencies, 99).toFixed(2)),
      ratio_to_pg: Number((runtimeRate / rawPg).toFixed(2)),
    };
    out('');
    out('figure                     value');
    out('-------------------------  ------------');
    for (const [k, v] of Object.entries(figures)) out(`${k.padEnd(25)}  ${v}`);
    out(`ratio_to_js_consume         ${(runtimeRate / rawConsume).toFixed(3)}`);
    out(
      `(${MESSAGES} messages over ${KEYS} keys; raw: ${RAW} JetStream messages, ${PG_TX} PostgreSQL transactions)`,
    );
    out(
      `target: runtime >= 1.0x raw_pg_tx_per_s -> ${figures.ratio_to_pg >= 1 ? 'met' : 'NOT met'}`,
    );
    if (args.json !== undefined) writeFileSync(args.json, `${JSON.stringify(figures, null, 2)}\n`);
  } finally {
    await nc.close();
    await db.close();
    await database.drop();
    await nats.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${String(err instanceof Error ? err.stack : err)}\n`);
  process.exit(1);
});
