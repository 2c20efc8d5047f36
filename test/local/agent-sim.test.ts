/**
 * The simulated VM agent: boots on a running session VM, reads its bootstrap (userData) as the
 * reference agent does, reports ready there with the VM's private IP, port 47989 and a 4-digit
 * PIN under the bootstrap's token (a VM without a bootstrap gets no agent), heartbeats with lastInputAt
 * while playing, relays a Preempt, gives unique report ids, retries a report the gateway did
 * not take (same id), and stops with its VM. The gateway side is a plain HTTP recorder.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  AgentReport,
  agentToken,
  encodeAgentBootstrap,
  type MessageOf,
} from '../../contracts/index.ts';
import { createAgentSim, type AgentSimSource } from '../../deploy/agent-sim/index.ts';
import type { FakeVmEvent } from '../../deploy/fakes/arm/index.ts';
import { eventually, quietLog } from '../support/runtime-env.ts';

const MASTER = 'a-master-secret-of-at-least-32-characters';
type Report = MessageOf<typeof AgentReport>;
let server: http.Server;
let url: string;
const reports: Report[] = [];
const tokens: string[] = [];
let refuseNext = 0;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (refuseNext > 0) {
        refuseNext--;
        res.writeHead(503).end();
        return;
      }
      reports.push(AgentReport.decode(Buffer.concat(chunks)));
      tokens.push(String(req.headers['x-respawn-agent-token']));
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

function source(): AgentSimSource & { emit(e: FakeVmEvent): void } {
  const listeners = new Set<(e: FakeVmEvent) => void>();
  return {
    onEvent(l) {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    emit: (e) => listeners.forEach((l) => l(e)),
    state: {
      // As the effects runner writes it: base64 of the bootstrap; `bare-` VMs have none.
      vm: (name) => ({
        name,
        tags: {},
        nics: [{ name: `${name}-nic` }],
        userData: name.startsWith('bare-')
          ? null
          : Buffer.from(
              encodeAgentBootstrap({
                reportUrl: `${url}/agent/report`,
                vmName: name,
                sessionId: 'p9-1',
                playerId: 'p9',
                token: agentToken(MASTER, name),
              }),
            ).toString('base64'),
      }),
      nic: () => ({ privateIp: '10.0.3.7' }),
    },
  };
}

it('reports ready, heartbeats, relays a Preempt and stops with its VM', async () => {
  const arm = source();
  const sim = createAgentSim({
    arm,
    log: quietLog(),
    bootDelayMs: 50,
    heartbeatMs: 100,
    retryMs: 20,
  });
  sim.start();
  const at = new Date().toISOString();
  const vmName = 'vm-p9-1-a1-spotnc4';
  // Another VM (no session purpose) gets no agent, nor does a session VM without a bootstrap.
  arm.emit({ type: 'vm.running', vmName: 'disk-builder', tags: { purpose: 'image' }, at });
  arm.emit({
    type: 'vm.running',
    vmName: 'bare-vm',
    tags: { purpose: 'respawn-session', player: 'p8', session: 'p8-1' },
    at,
  });
  expect(sim.agents().map((a) => a.vmName)).toEqual([]);
  refuseNext = 1;
  arm.emit({
    type: 'vm.running',
    vmName,
    tags: { purpose: 'respawn-session', player: 'p9', session: 'p9-1' },
    at,
  });
  await eventually('ready and two heartbeats', () =>
    Promise.resolve(reports.filter((r) => r.kind === 'heartbeat').length >= 2),
  );
  const ready = reports[0]!;
  expect(ready).toMatchObject({
    kind: 'ready',
    vmName,
    sessionId: 'p9-1',
    playerId: 'p9',
    host: '10.0.3.7',
    port: 47989,
  });
  expect(ready.pin).toMatch(/^\d{4}$/);
  expect(tokens.every((t) => t === agentToken(MASTER, vmName))).toBe(true);
  expect(reports.find((r) => r.kind === 'heartbeat')?.lastInputAt).toBeDefined();

  // As Azure (and the ARM fake) write it: an HTTP date, whole seconds; reports carry ISO-8601.
  const due = new Date(Math.floor((Date.now() + 30_000) / 1_000) * 1_000);
  const notBefore = due.toISOString();
  arm.emit({ type: 'vm.preempt', vmName, eventId: 'ev-1', notBefore: due.toUTCString(), at });
  await eventually('the preempt relayed', () =>
    Promise.resolve(reports.some((r) => r.kind === 'preempt')),
  );
  expect(reports.find((r) => r.kind === 'preempt')).toMatchObject({ eventId: 'ev-1', notBefore });

  arm.emit({ type: 'vm.evicted', vmName, policy: 'Delete', dataDisks: [], at });
  expect(sim.agents()).toEqual([]);
  const count = reports.length;
  await new Promise((r) => setTimeout(r, 300)); // three heartbeat periods: none may come
  expect(reports.length).toBe(count);
  expect(new Set(reports.map((r) => r.id)).size).toBe(reports.length);
  expect(reports.every((r) => r.vmName === vmName)).toBe(true);
  await sim.stop();
});
