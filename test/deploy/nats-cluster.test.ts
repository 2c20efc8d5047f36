/**
 * deploy/nats/cluster/: three nodes that form one cluster (distinct names, each routed to the
 * other two), each with JetStream and exactly the subject mappings of deploy/nats/respawn.conf
 * (the partitioning is part of Respawn's contract), and each accepted by the nats-server this
 * machine has (2.9.10, the oldest the code supports) with `-t`.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { natsServerBin } from '../harness/index.ts';
import { TEST_NATS_ENV } from './nats-servers.ts';
import { readRepo, repoPath } from './support.ts';

const run = promisify(execFile);
const NODES = ['node-1.conf', 'node-2.conf', 'node-3.conf'].map((f) => `deploy/nats/cluster/${f}`);

/** The `"source": "destination"` pairs of a config's `mappings = { … }` block, in order. */
function mappings(text: string): [string, string][] {
  const block = /^mappings\s*=\s*\{([\s\S]*?)^\}/m.exec(text)?.[1];
  if (block === undefined) throw new Error('no mappings block');
  return [...block.matchAll(/^\s*"([^"]+)"\s*:\s*"([^"]+)"\s*$/gm)].map((m) => [m[1]!, m[2]!]);
}

const field = (text: string, name: string): string | undefined =>
  new RegExp(`^\\s*${name}:\\s*"?([^"\\s]+)"?`, 'm').exec(text)?.[1];

const nodes = NODES.map((file) => {
  const text = readRepo(file);
  const cluster = /^cluster\s*\{([\s\S]*?)^\}/m.exec(text)?.[1] ?? '';
  return {
    file,
    text,
    serverName: field(text, 'server_name'),
    clusterName: field(cluster, 'name'),
    listenPort: /listen:\s*[\d.]+:(\d+)/.exec(cluster)?.[1],
    routes: [...cluster.matchAll(/nats:\/\/([\w.-]+):(\d+)/g)].map((m) => `${m[1]}:${m[2]}`),
  };
});

describe('deploy/nats/cluster', () => {
  it('has three nodes with distinct server names in one cluster', () => {
    expect(new Set(nodes.map((n) => n.serverName)).size).toBe(3);
    expect(new Set(nodes.map((n) => n.clusterName))).toEqual(new Set(['respawn']));
  });

  it('routes each node to the other two, on the port they listen on for routes', () => {
    for (const n of nodes) {
      const others = nodes.filter((o) => o !== n).map((o) => `${o.serverName}:${o.listenPort}`);
      expect(n.routes.sort(), n.file).toEqual(others.sort());
    }
  });

  it('enables JetStream with a store directory on every node', () => {
    for (const n of nodes)
      expect(/^jetstream\s*\{[\s\S]*?store_dir:/m.test(n.text), n.file).toBe(true);
  });

  it('maps subjects exactly as the single-node respawn.conf does', () => {
    const single = mappings(readRepo('deploy/nats/respawn.conf'));
    expect(single.length).toBeGreaterThanOrEqual(5);
    expect(mappings(readRepo('deploy/nats/cluster/mappings.conf'))).toEqual(single);
    for (const n of nodes) expect(n.text, n.file).toMatch(/^include \.\/mappings\.conf$/m);
  });

  it('keeps the single-node limits (payload size, client port)', () => {
    const single = readRepo('deploy/nats/respawn.conf');
    for (const n of nodes) {
      expect(field(n.text, 'max_payload'), n.file).toBe(field(single, 'max_payload'));
      expect(field(n.text, 'port'), n.file).toBe(field(single, 'port'));
    }
  });

  it.each(NODES)('%s is a valid configuration for nats-server -t', async (file) => {
    const { stdout, stderr } = await run(natsServerBin(), ['-c', repoPath(file), '-t'], {
      cwd: repoPath('deploy/nats/cluster'),
      // The nodes include ../auth.conf, whose passwords come from the environment.
      env: { ...process.env, ...TEST_NATS_ENV },
    });
    expect(`${stdout}${stderr}`).toContain('is valid');
  });
});
