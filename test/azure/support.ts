/** A fake ARM and a real-SDK VmProvider pointed at it, for one test. */
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import {
  createAzureVmProvider,
  staticTokenCredential,
  type AzureVmProviderOptions,
  type ResourceTags,
  type VmProvider,
  type VmSpec,
} from '../../actors/allocator/azure/index.ts';
import type { JetStreamClient } from '@nats-io/jetstream';
import type { Knex } from 'knex';
import { AzureCreateVm, outAzureSubject } from '../../contracts/index.ts';
import { startArmFake, type ArmFake, type ArmFakeOptions } from '../../deploy/fakes/arm/index.ts';

export const SUBSCRIPTION = '6f1c7a4e-0000-4000-a000-00000000c0de';
export const RESOURCE_GROUP = 'respawn-test';
export const LOCATION = 'centralindia';
export const T4 = 'Standard_NC4as_T4_v3';

/**
 * Who holds a region's Azure effects lease now (`host/pid#uuid8`), as an operator reads it
 * (`select owner from rt_lease where name = 'role.azure-effects.<region>'`).
 */
export async function effectsLeaseOwner(knex: Knex, region: string): Promise<string | undefined> {
  const row = await knex('rt_lease')
    .first<{ owner: string } | undefined>('owner')
    .where({ name: `role.azure-effects.${region}` })
    .andWhere('expires_at', '>', knex.raw('now()'));
  return row?.owner;
}

/**
 * Publishes the allocator's create effect for a player's first session VM (Spot NC4as_T4_v3),
 * as the allocator would, under `msgId`; resolves to the VM's name.
 */
export async function publishCreate(
  js: JetStreamClient,
  region: string,
  player: string,
  msgId: string,
): Promise<string> {
  const vmName = `vm-${player}-1-a1-spotnc4`;
  await js.publish(
    outAzureSubject(region),
    AzureCreateVm.encode({
      sessionId: `${player}-1`,
      playerId: player,
      vmName,
      nicName: `${vmName}-nic`,
      diskName: `disk-${player}`,
      size: T4,
      priority: 'spot',
      tags: { purpose: 'respawn-session' },
    }),
    { msgID: msgId },
  );
  return vmName;
}

export interface AzureEnv {
  fake: ArmFake;
  provider: VmProvider;
  logLines: Record<string, unknown>[];
  rawLog: () => string;
  dispose(): Promise<void>;
}

export async function startAzureEnv(
  fakeOpts: Partial<ArmFakeOptions> = {},
  providerOpts: Partial<AzureVmProviderOptions> = {},
): Promise<AzureEnv> {
  const fake = await startArmFake({
    subscriptionId: SUBSCRIPTION,
    resourceGroup: RESOURCE_GROUP,
    location: LOCATION,
    seed: 42,
    lroPolls: 2,
    ...fakeOpts,
  });
  const logLines: Record<string, unknown>[] = [];
  let raw = '';
  const log: Logger = pino(
    { level: 'debug' },
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        raw += chunk.toString();
        for (const line of chunk.toString().split('\n').filter(Boolean)) {
          logLines.push(JSON.parse(line) as Record<string, unknown>);
        }
        cb();
      },
    }),
  );
  const provider = createAzureVmProvider({
    subscriptionId: SUBSCRIPTION,
    resourceGroup: RESOURCE_GROUP,
    location: LOCATION,
    credential: staticTokenCredential(),
    endpoint: fake.url,
    caCert: fake.caCert,
    pollIntervalMs: 10,
    operationTimeoutMs: 10_000,
    requestTimeoutMs: 5_000,
    log,
    ...providerOpts,
  });
  return { fake, provider, logLines, rawLog: () => raw, dispose: () => fake.stop() };
}

export function tagsFor(
  player: string,
  session: string,
  purpose = 'session-vm',
  tier: ResourceTags['tier'] = 'spot',
): ResourceTags {
  return { player, session, tier, purpose };
}

/** Names derive from the session, as the allocator derives them. */
export function namesFor(session: string): { vm: string; nic: string } {
  return { vm: `vm-${session}`, nic: `nic-${session}` };
}

export const ADMIN_PASSWORD = 'Sup3r-Secret-Adm1n!';

export function vmSpec(
  player: string,
  session: string,
  disk: string,
  overrides: Partial<VmSpec> = {},
): VmSpec {
  const tier = overrides.tier ?? 'spot';
  const { vm, nic } = namesFor(session);
  return {
    name: vm,
    nicName: nic,
    size: T4,
    tier,
    dataDiskName: disk,
    image: 'MicrosoftWindowsDesktop:windows-11:win11-23h2-pro:latest',
    admin: { username: 'respawn', password: ADMIN_PASSWORD },
    userData: 'agent-secret=do-not-log-me',
    tags: tagsFor(player, session, 'session-vm', tier),
    ...overrides,
  };
}

/** The player's disk and the session's NIC, then the VM: what the allocator's effect does. */
export async function provision(
  provider: VmProvider,
  player: string,
  session: string,
  overrides: Partial<VmSpec> = {},
): Promise<{ disk: string; spec: VmSpec }> {
  const disk = `disk-${player}`;
  if ((await provider.getDisk(disk)) === null) {
    await provider.createDisk({
      name: disk,
      sizeGb: 256,
      source: { kind: 'empty' },
      ...(overrides.zone === undefined ? {} : { zone: overrides.zone }),
      tags: tagsFor(player, session, 'player-disk'),
    });
  }
  const spec = vmSpec(player, session, disk, overrides);
  await provider.ensureNic({ name: spec.nicName, tags: spec.tags });
  return { disk, spec };
}

/** Resolves to the rejection of `p` (fails if it resolves). */
export async function rejectionOf(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected the call to fail, it succeeded');
}

/** A request to the fake with Node's own HTTPS client: for the fake's raw HTTP behaviour. */
export async function armRequest(
  fake: ArmFake,
  method: string,
  /** After `/providers/` in the resource group, or a full path starting with `/`. */
  path: string,
  body?: unknown,
  opts: {
    apiVersion?: string | null;
    token?: string | null;
    headers?: Record<string, string>;
  } = {},
): Promise<{ status: number; headers: Record<string, string>; body: unknown }> {
  const { request } = await import('node:https');
  const full = path.startsWith('/')
    ? path
    : `/subscriptions/${fake.subscriptionId}/resourceGroups/${fake.resourceGroup}/providers/${path}`;
  const url = new URL(full, fake.url);
  const apiVersion = opts.apiVersion === undefined ? '2026-03-01' : opts.apiVersion;
  if (apiVersion !== null && !url.searchParams.has('api-version'))
    url.searchParams.set('api-version', apiVersion);
  const token = opts.token === undefined ? 'test-token' : opts.token;
  const headers: Record<string, string> = { 'content-type': 'application/json', ...opts.headers };
  if (token !== null) headers.authorization = `Bearer ${token}`;
  return new Promise((resolve, reject) => {
    const req = request(url, { method, ca: fake.caCert, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        const h: Record<string, string> = {};
        for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') h[k] = v;
        resolve({
          status: res.statusCode ?? 0,
          headers: h,
          body: text === '' ? undefined : (JSON.parse(text) as unknown),
        });
      });
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}
