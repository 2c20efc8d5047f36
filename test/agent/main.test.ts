/**
 * The agent as it runs on a VM: `node --import tsx deploy/agent/main.ts`, configured by its
 * environment, against the ARM fake's IMDS and the real gateway. Bad configuration exits 2
 * naming the variables; a running agent reports ready and stops on SIGTERM with exit 0.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentToken } from '../../contracts/index.ts';
import {
  MASTER,
  createSessionVm,
  reportsOf,
  startStack,
  streamHost,
  until,
  type Stack,
} from './support.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');

interface Child {
  lines: Record<string, unknown>[];
  raw: () => string;
  exited: Promise<number | null>;
  kill(signal: NodeJS.Signals): void;
}

function runMain(env: Record<string, string>): Child {
  const child = spawn(process.execPath, ['--import', 'tsx', 'deploy/agent/main.ts'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const lines: Record<string, unknown>[] = [];
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString();
    for (;;) {
      const i = out.indexOf('\n');
      if (i < 0) break;
      const line = out.slice(0, i);
      out = out.slice(i + 1);
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        lines.push({ text: line });
      }
    }
  });
  let err = '';
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  return {
    lines,
    raw: () => `${lines.map((l) => JSON.stringify(l)).join('\n')}\n${err}`,
    exited: new Promise((r) => child.once('exit', (code) => r(code))),
    kill: (signal) => child.kill(signal),
  };
}

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.dispose();
});

describe('deploy/agent/main.ts', () => {
  it('exits 2 on bad configuration, naming each bad variable', async () => {
    const child = runMain({
      RESPAWN_AGENT_STREAM_PORT: 'none',
      RESPAWN_AGENT_MAX_ATTEMPTS: '0',
    });
    expect(await child.exited).toBe(2);
    const fatal = child.lines.find((l) => l.level === 60);
    expect(String(fatal?.msg)).toContain('RESPAWN_AGENT_STREAM_PORT');
    expect(String(fatal?.msg)).toContain('RESPAWN_AGENT_MAX_ATTEMPTS');
  });

  it('bootstraps from IMDS, reports ready to the gateway, and stops on SIGTERM with exit 0', async () => {
    const vm = await createSessionVm(stack, 'p-main');
    const sunshine = await streamHost();
    await sunshine.listen();
    const dir = await mkdtemp(path.join(tmpdir(), 'respawn-agent-main-'));
    const child = runMain({
      LOG_LEVEL: 'debug',
      RESPAWN_AGENT_IMDS_URL: stack.arm.url,
      RESPAWN_AGENT_IMDS_CA_FILE: stack.arm.caCertPath,
      RESPAWN_AGENT_FAKE_VM: vm.vmName,
      RESPAWN_AGENT_STREAM_PORT: String(sunshine.port),
      RESPAWN_AGENT_PIN_FILE: path.join(dir, 'pin'),
      RESPAWN_AGENT_IDLE_COMMAND: '',
      RESPAWN_AGENT_READY_POLL_MS: '100',
    });
    try {
      await until(
        'ready stored',
        async () => (await reportsOf(stack, vm.vmName)).some((r) => r.kind === 'ready'),
        30_000,
      );
      child.kill('SIGTERM');
      expect(await child.exited).toBe(0);
      expect(child.lines.some((l) => l.msg === 'agent stopped')).toBe(true);
      expect(child.raw()).not.toContain(agentToken(MASTER, vm.vmName));
    } finally {
      child.kill('SIGKILL');
      await sunshine.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
