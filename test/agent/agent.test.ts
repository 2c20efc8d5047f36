/**
 * The reference VM agent (deploy/agent/) end to end: the allocator's Azure effects runner
 * creates a session VM through the real SDK against the ARM fake, with the agent's bootstrap
 * as userData; the agent, playing that VM, reads it from the fake's IMDS and reports to the
 * real gateway, whose reports land on `respawn.in.agent` (a private NATS).
 */
import { readFile, stat } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentToken, decodeAgentBootstrap, encodeAgentBootstrap } from '../../contracts/index.ts';
import {
  AgentBootstrapError,
  createImdsClient,
  startAgent,
  type AgentOutcome,
} from '../../deploy/agent/index.ts';
import {
  MASTER,
  createSessionVm,
  reportsOf,
  runAgent,
  startStack,
  streamHost,
  until,
  type Stack,
} from './support.ts';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.dispose();
});

const T0 = Date.parse('2030-01-01T00:00:00.000Z');

/** Provisions a VM through the real SDK with the given userData (or none), bypassing the runner. */
async function vmWithUserData(name: string, userData: string | undefined): Promise<void> {
  const tags = {
    player: 'px',
    session: `${name}-s`,
    tier: 'spot',
    purpose: 'respawn-session',
  } as const;
  await stack.provider.createDisk({
    name: `disk-${name}`,
    sizeGb: 64,
    source: { kind: 'empty' },
    tags: { ...tags, purpose: 'respawn-disk' },
  });
  await stack.provider.ensureNic({ name: `${name}-nic`, tags });
  await stack.provider.createOrUpdateVm({
    name,
    nicName: `${name}-nic`,
    size: 'Standard_NC4as_T4_v3',
    tier: 'spot',
    dataDiskName: `disk-${name}`,
    image: 'Canonical:0001-com-ubuntu-server-jammy:22_04-lts-gen2:latest',
    admin: { username: 'respawn', sshPublicKey: 'ssh-ed25519 AAAAC3Nza test' },
    ...(userData === undefined ? {} : { userData }),
    tags,
  });
}

describe('the reference VM agent', () => {
  it('gets, as userData on the VM the effects runner creates, a bootstrap with that VM’s own token (never logged)', async () => {
    const vm = await createSessionVm(stack, 'p-boot');
    const stored = stack.arm.state.vm(vm.vmName)?.userData;
    expect(stored).toBeTypeOf('string');
    const expected = {
      v: 1,
      reportUrl: stack.reportUrl,
      vmName: vm.vmName,
      sessionId: vm.sessionId,
      playerId: 'p-boot',
      token: agentToken(MASTER, vm.vmName),
    };
    expect(decodeAgentBootstrap(Buffer.from(stored!, 'base64').toString('utf8'))).toEqual(expected);
    // What the agent itself reads from IMDS, as the VM.
    const imds = createImdsClient({
      baseUrl: stack.arm.url,
      ca: stack.arm.caCert,
      fakeVm: vm.vmName,
      timeoutMs: 3_000,
    });
    expect(await imds.bootstrap()).toEqual(expected);
    expect(await imds.privateIp()).toBe(stack.arm.state.nic(vm.nicName)?.privateIp);
    // The runner gave the VM a public IP (AZURE_VM_PUBLIC_IP's default), which IMDS shows.
    expect(await imds.addresses()).toEqual({
      privateIp: stack.arm.state.nic(vm.nicName)?.privateIp,
      publicIp: stack.arm.state.publicIp(`${vm.vmName}-pip`)?.ipAddress,
    });
    expect(stack.runnerLogs.lines.length).toBeGreaterThan(0);
    expect(stack.runnerLogs.text()).not.toContain(expected.token);
  });

  it('reports ready once the streaming host answers (public IP, port, the PIN it wrote), then heartbeats with lastInputAt', async () => {
    const vm = await createSessionVm(stack, 'p-ready');
    const sunshine = await streamHost();
    let idleMs: number | undefined = 1_500;
    const run = await runAgent(stack, vm.vmName, sunshine.port, {
      now: () => new Date(T0),
      idle: () => Promise.resolve(idleMs),
    });
    try {
      await until('three probes of the closed port', () => run.agent.view().streamProbes >= 3);
      expect(await reportsOf(stack, vm.vmName)).toEqual([]);

      await sunshine.listen();
      await until('ready and two heartbeats stored', async () => {
        const r = await reportsOf(stack, vm.vmName);
        return r.filter((x) => x.kind === 'heartbeat').length >= 2;
      });
      const reports = await reportsOf(stack, vm.vmName);
      const pin = (await readFile(run.pinFile, 'utf8')).trim();
      expect(pin).toMatch(/^\d{4}$/);
      expect(((await stat(run.pinFile)).mode & 0o777).toString(8)).toBe('640');
      const ready = reports.filter((r) => r.kind === 'ready');
      expect(ready).toHaveLength(1);
      expect(ready[0]).toMatchObject({
        type: 'agent.report.v1',
        vmName: vm.vmName,
        sessionId: vm.sessionId,
        playerId: 'p-ready',
        at: new Date(T0).toISOString(),
        host: stack.arm.state.publicIp(`${vm.vmName}-pip`)?.ipAddress,
        port: sunshine.port,
        pin,
      });
      // The address a player at home can reach, not the VM's private one.
      expect(ready[0]?.host).toMatch(/^203\.0\.113\.\d+$/);
      expect(run.logs.text()).not.toContain('no public IP');
      expect(reports[0]?.kind).toBe('ready');
      for (const r of reports) expect(r.msgId).toBe(`agent-${r.id}`);
      const beats = reports.filter((r) => r.kind === 'heartbeat');
      for (const b of beats) expect(b.lastInputAt).toBe(new Date(T0 - 1_500).toISOString());
      expect(new Set(reports.map((r) => r.id)).size).toBe(reports.length);

      // Without an idle figure, heartbeats go on without lastInputAt.
      idleMs = undefined;
      const before = beats.length;
      await until('a heartbeat without lastInputAt', async () => {
        const hb = (await reportsOf(stack, vm.vmName)).filter((r) => r.kind === 'heartbeat');
        return hb.length > before + 1 && hb.at(-1)?.lastInputAt === undefined;
      });

      const tokens = stack.shown.filter((s) => s.vmName === vm.vmName).map((s) => s.token);
      expect(tokens.length).toBeGreaterThanOrEqual(3);
      expect(new Set(tokens)).toEqual(new Set([agentToken(MASTER, vm.vmName)]));
      expect(run.agent.view()).toMatchObject({ ready: true, host: ready[0]?.host });
      expect(run.logs.text()).not.toContain(agentToken(MASTER, vm.vmName));
      // Four digits can occur by chance in report ids (UUIDs) and timestamps: look at what a
      // log line says, not at every digit in it.
      expect(pinMentions(run.logs.text(), pin)).toEqual([]);
    } finally {
      await run.cleanup();
      await sunshine.close();
    }
  });

  it('reports a Preempt once, retrying while the gateway fails, and approves it only after the report was accepted', async () => {
    const vm = await createSessionVm(stack, 'p-evict');
    const sunshine = await streamHost();
    await sunshine.listen();
    // No heartbeats in this test: every attempt the gateway sees after ready is the preempt.
    const run = await runAgent(stack, vm.vmName, sunshine.port, { heartbeatMs: 600_000 });
    try {
      await until('ready accepted', () => run.agent.view().ready);
      stack.gatewayDown.value = true;
      const seenBefore = stack.shown.filter((s) => s.vmName === vm.vmName).length;
      const eventId = stack.arm.preempt(vm.vmName, { noticeMs: 120_000 });
      const notBefore = stack.arm.scheduledEvents(vm.vmName).Events[0]?.NotBefore ?? '';

      await until('the preempt report retried at least twice', () => {
        const seen = stack.shown.filter((s) => s.vmName === vm.vmName).length;
        return seen - seenBefore >= 2;
      });
      const approvals = (): number =>
        stack.arm.state
          .requests()
          .filter((r) => r.method === 'POST' && r.path === '/metadata/scheduledevents').length;
      // Not accepted yet: not approved, so Azure has not been told to go ahead.
      expect(approvals()).toBe(0);
      expect(stack.arm.state.vm(vm.vmName)).toBeDefined();
      expect((await reportsOf(stack, vm.vmName)).filter((r) => r.kind === 'preempt')).toEqual([]);

      stack.gatewayDown.value = false;
      await until(
        'the VM evicted at once by the approval',
        () => stack.arm.state.vm(vm.vmName) === undefined,
      );
      const preempts = (await reportsOf(stack, vm.vmName)).filter((r) => r.kind === 'preempt');
      expect(preempts).toHaveLength(1);
      expect(preempts[0]).toMatchObject({
        vmName: vm.vmName,
        sessionId: vm.sessionId,
        playerId: 'p-evict',
        eventId,
        notBefore: new Date(Date.parse(notBefore)).toISOString(),
      });
      expect(approvals()).toBe(1);
      expect(run.agent.view()).toMatchObject({ preempted: true, accepted: { preempt: 1 } });
    } finally {
      stack.gatewayDown.value = false;
      await run.cleanup();
      await sunshine.close();
    }
  });

  it('reports the private IP, with a warning, on a VM without a public IP (a relay or VPN in front)', async () => {
    const name = 'vm-private-only';
    await vmWithUserData(
      name,
      encodeAgentBootstrap({
        reportUrl: stack.reportUrl,
        vmName: name,
        sessionId: 'px-7',
        playerId: 'px',
        token: agentToken(MASTER, name),
      }),
    );
    expect(stack.arm.state.nic(`${name}-nic`)?.publicIpName).toBeNull();
    const sunshine = await streamHost();
    await sunshine.listen();
    const run = await runAgent(stack, name, sunshine.port, { heartbeatMs: 600_000 });
    try {
      await until('ready stored', async () =>
        (await reportsOf(stack, name)).some((r) => r.kind === 'ready'),
      );
      const privateIp = stack.arm.state.nic(`${name}-nic`)?.privateIp;
      expect((await reportsOf(stack, name)).find((r) => r.kind === 'ready')).toMatchObject({
        host: privateIp,
      });
      expect(
        run.logs.lines.find((l) => String(l.msg).startsWith('no public IP on this VM')),
      ).toMatchObject({ level: 40, privateIp });
    } finally {
      await run.cleanup();
      await sunshine.close();
    }
  });

  it('gives up at once when the gateway refuses its token: one attempt, a log line, and the agent ends', async () => {
    const name = 'vm-wrong-token';
    await vmWithUserData(
      name,
      encodeAgentBootstrap({
        reportUrl: stack.reportUrl,
        vmName: name,
        sessionId: 'px-9',
        playerId: 'px',
        token: agentToken('some-other-master-secret-0123456789abcdef', name),
      }),
    );
    const sunshine = await streamHost();
    await sunshine.listen();
    const run = await runAgent(stack, name, sunshine.port, { maxAttempts: 5 });
    try {
      const outcome = await Promise.race([
        run.agent.finished,
        new Promise<AgentOutcome | 'still running'>((r) =>
          setTimeout(() => r('still running'), 15_000),
        ),
      ]);
      expect(outcome).toBe('refused');
      expect(stack.shown.filter((s) => s.vmName === name)).toHaveLength(1);
      expect(await reportsOf(stack, name)).toEqual([]);
      const refusal = run.logs.lines.find(
        (l) => l.msg === 'report refused by the gateway; not retried',
      );
      expect(refusal).toMatchObject({ level: 50, status: 401, kind: 'ready' });
      expect(run.logs.text()).not.toContain(
        agentToken('some-other-master-secret-0123456789abcdef', name),
      );
    } finally {
      await run.cleanup();
      await sunshine.close();
    }
  });

  it('does not start on a VM without a bootstrap, and says why', async () => {
    const name = 'vm-no-userdata';
    await vmWithUserData(name, undefined);
    const err = await startAgent({
      imdsUrl: stack.arm.url,
      imdsCa: stack.arm.caCert,
      fakeVm: name,
      streamHost: '127.0.0.1',
      streamPort: 1,
      pinFile: '/nonexistent/pin',
      heartbeatMs: 1_000,
      idle: () => Promise.resolve(undefined),
      eventsPollMs: 100,
      readyPollMs: 100,
      maxAttempts: 1,
      retryBaseMs: 10,
      retryMaxMs: 10,
      httpTimeoutMs: 3_000,
      log: stack.runnerLogs.log,
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(AgentBootstrapError);
    expect((err as Error).message).toMatch(/no userData/);
  });
});

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;

/** Fields of the agent's JSON log lines that name or carry the pairing PIN. */
function pinMentions(logs: string, pin: string): string[] {
  const found: string[] = [];
  for (const line of logs.split('\n').filter((l) => l.trim() !== '')) {
    for (const [k, v] of Object.entries(JSON.parse(line) as Record<string, unknown>)) {
      if (k === 'time' || k === 'pid') continue;
      const text = typeof v === 'string' ? v.replace(UUID, '') : JSON.stringify(v);
      if (k.toLowerCase() === 'pin' || new RegExp(`(^|\\D)${pin}(\\D|$)`).test(text)) {
        found.push(`${k}=${String(v)}`);
      }
    }
  }
  return found;
}
