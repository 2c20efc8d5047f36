/**
 * Operators' dead-letter tool: `npm run dlq -- list [--prefix respawn.dlq.session] [--limit 50]`
 * and `npm run dlq -- reinject <seq> [<seq> ...]`. NATS_URL picks the server; NATS_USER and
 * NATS_PASSWORD (or NATS_PASSWORD_FILE) the user of deploy/nats/auth.conf: `operator` lists
 * (read-only), re-injecting a command publishes it, which only the `actors` user may do.
 */
import { parseArgs } from 'node:util';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { z } from 'zod';
import {
  NatsUsers,
  natsConnectOptions,
  natsCredentialProblem,
  natsEnvShape,
  resolveSecretFiles,
} from '../contracts/index.ts';
import { listDeadLetters, reinjectDeadLetter } from '../actors/runtime/index.ts';

const USAGE = `usage:
  npm run dlq -- list [--prefix SUBJECT_PREFIX] [--from SEQ] [--limit N]
  npm run dlq -- reinject SEQ [SEQ ...]
env: NATS_URL (default nats://127.0.0.1:4222), NATS_USER, NATS_PASSWORD or NATS_PASSWORD_FILE
     (list: the operator user; reinject: the actors user)`;

/** The connection as the deployment's users and secrets say (no users: the local server). */
function connectOptions(): Parameters<typeof connect>[0] {
  const { env, problems } = resolveSecretFiles(process.env, ['NATS_PASSWORD']);
  const parsed = z.object(natsEnvShape).safeParse(env);
  const credentials = parsed.success ? natsCredentialProblem(parsed.data) : undefined;
  if (!parsed.success || problems.length > 0 || credentials !== undefined) {
    const issues = parsed.success
      ? []
      : parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new Error(
      [
        'bad NATS settings:',
        ...problems,
        ...issues,
        ...(credentials === undefined ? [] : [credentials]),
      ].join('\n'),
    );
  }
  // A user of auth.conf gets its inbox prefix (the only inbox it may subscribe to).
  const as = Object.values(NatsUsers).find((u) => u === parsed.data.NATS_USER);
  return natsConnectOptions(parsed.data, as ?? NatsUsers.operator, 'respawn-dlq');
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      prefix: { type: 'string' },
      from: { type: 'string' },
      limit: { type: 'string', default: '50' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [verb, ...rest] = positionals;
  if (values.help === true || verb === undefined) {
    process.stdout.write(`${USAGE}\n`);
    return verb === undefined && values.help !== true ? 2 : 0;
  }
  const nc = await connect({ ...connectOptions(), maxReconnectAttempts: 0 });
  try {
    const jsm = await jetstreamManager(nc);
    if (verb === 'list') {
      const dls = await listDeadLetters(jsm, {
        ...(values.prefix === undefined ? {} : { prefix: values.prefix }),
        ...(values.from === undefined ? {} : { fromSeq: Number(values.from) }),
        limit: Number(values.limit),
      });
      for (const d of dls) {
        process.stdout.write(
          `${d.seq}\t${d.time.toISOString()}\t${d.code}\t${d.originalSubject}\t${d.reason}\n`,
        );
      }
      process.stdout.write(`${dls.length} dead letter(s)\n`);
      return 0;
    }
    if (verb === 'reinject') {
      const js = jetstream(nc);
      for (const s of rest) {
        const seq = Number(s);
        const [d] = await listDeadLetters(jsm, { fromSeq: seq, limit: 1 });
        if (d === undefined || d.seq !== seq) {
          process.stderr.write(`no dead letter with sequence ${s}\n`);
          return 1;
        }
        const r = await reinjectDeadLetter(js, d);
        process.stdout.write(
          `${seq} -> ${r.subject}${r.duplicate ? ' (already re-injected)' : ''}\n`,
        );
      }
      return 0;
    }
    process.stderr.write(`unknown command ${verb}\n${USAGE}\n`);
    return 2;
  } finally {
    await nc.close();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
