/**
 * The agent's small parts without servers: its configuration (every bad variable named), the
 * command idle source (a number, or nothing, with one warning), and the stream probe.
 */
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import {
  AgentConfigError,
  agentOptions,
  commandIdleSource,
  loadAgentConfig,
  tcpAnswers,
} from '../../deploy/agent/index.ts';
import { backoffMs } from '../../deploy/agent/reporter.ts';
import { captureLog } from '../gateway/support.ts';

describe('agent configuration', () => {
  it('has defaults for Azure: IMDS at 169.254.169.254, Sunshine on 47989, xprintidle', () => {
    const cfg = loadAgentConfig({});
    expect(cfg).toMatchObject({
      RESPAWN_AGENT_IMDS_URL: 'http://169.254.169.254',
      RESPAWN_AGENT_STREAM_HOST: '127.0.0.1',
      RESPAWN_AGENT_STREAM_PORT: 47989,
      RESPAWN_AGENT_HEARTBEAT_SECONDS: 30,
      RESPAWN_AGENT_IDLE_COMMAND: 'xprintidle',
      RESPAWN_AGENT_EVENTS_POLL_MS: 1000,
      imdsCa: undefined,
    });
    expect(cfg.RESPAWN_AGENT_FAKE_VM).toBeUndefined();
    expect(agentOptions(cfg, captureLog().log)).toMatchObject({
      imdsUrl: 'http://169.254.169.254',
      streamPort: 47989,
      heartbeatMs: 30_000,
    });
  });

  it('names every bad variable in one error', () => {
    let err: unknown;
    try {
      loadAgentConfig({
        RESPAWN_AGENT_STREAM_PORT: '70000',
        RESPAWN_AGENT_HEARTBEAT_SECONDS: 'often',
        RESPAWN_AGENT_IMDS_URL: 'ftp://x',
        RESPAWN_AGENT_FAKE_VM: 'a b',
        RESPAWN_AGENT_IMDS_CA_FILE: '/nonexistent/ca.pem',
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AgentConfigError);
    const message = (err as Error).message;
    for (const name of [
      'RESPAWN_AGENT_STREAM_PORT',
      'RESPAWN_AGENT_HEARTBEAT_SECONDS',
      'RESPAWN_AGENT_IMDS_URL',
      'RESPAWN_AGENT_FAKE_VM',
      'RESPAWN_AGENT_IMDS_CA_FILE: cannot read /nonexistent/ca.pem',
    ]) {
      expect(message).toContain(name);
    }
  });
});

describe('command idle source', () => {
  it('reads the idle milliseconds the command prints', async () => {
    expect(await commandIdleSource('echo 1234', captureLog().log)()).toBe(1234);
  });

  it('gives nothing for a missing command or odd output, warning once', async () => {
    const logs = captureLog();
    const missing = commandIdleSource('respawn-no-such-idle-command', logs.log);
    expect(await missing()).toBeUndefined();
    expect(await missing()).toBeUndefined();
    expect(logs.lines.filter((l) => l.level === 40)).toHaveLength(1);
    expect(await commandIdleSource('echo idle', logs.log)()).toBeUndefined();
  });
});

describe('stream probe and backoff', () => {
  it('tells a listening port from a closed one', async () => {
    const server = createServer((s) => s.destroy());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    expect(await tcpAnswers('127.0.0.1', port, 1_000)).toBe(true);
    await new Promise<void>((r) => server.close(() => r()));
    expect(await tcpAnswers('127.0.0.1', port, 1_000)).toBe(false);
  });

  it('backs off exponentially with jitter, up to the cap', () => {
    for (let i = 0; i < 50; i++) {
      expect(backoffMs(1, 100, 10_000)).toBeGreaterThanOrEqual(50);
      expect(backoffMs(1, 100, 10_000)).toBeLessThanOrEqual(100);
      expect(backoffMs(4, 100, 10_000)).toBeGreaterThanOrEqual(400);
      expect(backoffMs(4, 100, 10_000)).toBeLessThanOrEqual(800);
      expect(backoffMs(30, 100, 10_000)).toBeLessThanOrEqual(10_000);
    }
  });
});
