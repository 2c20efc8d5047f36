/**
 * `npm start`: Respawn on this machine with one command. Until the gateway and product actors
 * land it runs the actor runtime with the demo actor, against a nats-server it starts from
 * deploy/nats/respawn.conf (the machine's shared NATS has no Respawn mappings) unless
 * NATS_URL is set, and PostgreSQL at DATABASE_URL (database created if missing). It then
 * drives a short demo through the real subjects and prints what the actors decided.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { ActorKinds, DemoAdd, DemoRemind, cmdSubject } from '../contracts/index.ts';
import { loadWorkerConfig } from '../actors/config.ts';
import { createRootLogger } from '../actors/log.ts';
import { runWorker } from '../actors/main.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const LOCAL_NATS_PORT = Number(process.env.RESPAWN_LOCAL_NATS_PORT ?? 4223);

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => {
      s.end();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

async function startLocalNats(
  log: ReturnType<typeof createRootLogger>,
): Promise<ChildProcess | undefined> {
  if (await portOpen(LOCAL_NATS_PORT)) {
    log.info(
      { port: LOCAL_NATS_PORT },
      'a NATS server already listens on the local port; using it',
    );
    return undefined;
  }
  const dir = path.join(ROOT, '.tmp', 'nats');
  mkdirSync(dir, { recursive: true });
  const conf = readFileSync(path.join(ROOT, 'deploy/nats/respawn.conf'), 'utf8').replace(
    /store_dir: .*/,
    `store_dir: "${path.join(dir, 'js')}"`,
  );
  writeFileSync(path.join(dir, 'nats.conf'), conf);
  const bin = process.env.NATS_SERVER_BIN ?? 'nats-server';
  const args = [
    '-c',
    path.join(dir, 'nats.conf'),
    '-a',
    '127.0.0.1',
    '-p',
    String(LOCAL_NATS_PORT),
  ];
  const child = spawn(bin, [...args, '-l', path.join(dir, 'nats.log')], { stdio: 'ignore' });
  child.on('error', (err) => {
    log.fatal({ err }, `cannot start ${bin}: install Debian's nats-server package or set NATS_URL`);
    process.exit(1);
  });
  for (let i = 0; i < 100 && !(await portOpen(LOCAL_NATS_PORT)); i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  log.info(
    { port: LOCAL_NATS_PORT, store: dir },
    'started a local nats-server with Respawn mappings',
  );
  return child;
}

async function main(): Promise<void> {
  const log = createRootLogger({ level: process.env.LOG_LEVEL ?? 'info', name: 'respawn-local' });
  const nats = process.env.NATS_URL === undefined ? await startLocalNats(log) : undefined;
  const cfg = loadWorkerConfig({
    ...process.env,
    NATS_URL: process.env.NATS_URL ?? `nats://127.0.0.1:${LOCAL_NATS_PORT}`,
  });
  const worker = await runWorker(cfg, log);

  // The demo: a player-like key gets three increments and a reminder two seconds later.
  const nc = await connect({ servers: cfg.NATS_URL });
  const js = jetstream(nc);
  const sub = nc.subscribe('respawn.demo.*.evt.*');
  void (async () => {
    for await (const m of sub) log.info({ subject: m.subject, event: m.string() }, 'actor decided');
  })();
  const key = `demo-${Date.now()}`;
  for (let n = 1; n <= 3; n++) {
    await js.publish(cmdSubject(ActorKinds.demo, key, 'add'), DemoAdd.encode({ n, amount: 10 }));
  }
  await js.publish(
    cmdSubject(ActorKinds.demo, key, 'remind'),
    DemoRemind.encode({ name: 'hello', at: new Date(Date.now() + 2_000).toISOString() }),
  );
  log.info(
    { key, watch: `nats sub 'respawn.demo.${key}.>' -s ${cfg.NATS_URL}` },
    'demo commands sent; Ctrl-C stops',
  );

  const shutdown = (): void => {
    void (async () => {
      await nc.close();
      await worker.stop();
      nats?.kill('SIGTERM');
      process.exit(0);
    })();
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

main().catch((err: unknown) => {
  createRootLogger({ level: 'info', name: 'respawn-local' }).fatal(
    { err },
    'respawn failed to start',
  );
  process.exit(1);
});
