/**
 * docker-compose.yml names only what exists: images and build targets, mounted files, entry
 * points, variables the code reads, ports the processes listen on. No Docker engine runs
 * here, so the file is parsed (js-yaml) into the subset of the Compose specification Respawn
 * uses, with unknown keys refused, and each name is checked against the repository.
 */
import { describe, expect, it } from 'vitest';
import { WorkerConfigSchema } from '../../actors/config.ts';
import { GatewayEnvSchema } from '../../gateway/config.ts';
import {
  INTERPOLATION,
  copiedInto,
  dockerStages,
  existsInRepo,
  loadCompose,
  productSources,
  readRepo,
  readersOf,
  type ComposeService,
} from './support.ts';

const compose = loadCompose();
const services = Object.entries(compose.services);
const ours = services.filter(([, s]) => s.build !== undefined);

/** Variables a third-party image reads (its own documentation), not Respawn's code. */
const IMAGE_VARIABLES: Record<string, readonly string[]> = {
  'postgres:15': ['POSTGRES_HOST_AUTH_METHOD', 'POSTGRES_DB'],
};

const entryPoint = (s: ComposeService): string | undefined => {
  const c = s.command ?? [];
  return c[0] === 'node' && c[1] === '--import' && c[2] === 'tsx' ? c[3] : undefined;
};
const role = (s: ComposeService): 'gateway' | 'worker' | 'other' =>
  entryPoint(s) === 'gateway/main.ts'
    ? 'gateway'
    : entryPoint(s) === 'actors/main.ts'
      ? 'worker'
      : 'other';
const env = (s: ComposeService): Record<string, string | undefined> =>
  Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, v ?? undefined]));

/** Where the process listens, by the code's own defaults and the service's variables. */
function listenPort(s: ComposeService): number | undefined {
  switch (role(s)) {
    case 'gateway':
      return GatewayEnvSchema.shape.GATEWAY_PORT.parse(env(s).GATEWAY_PORT);
    case 'worker':
      return WorkerConfigSchema.shape.RESPAWN_HTTP_PORT.parse(env(s).RESPAWN_HTTP_PORT);
    case 'other':
      return undefined;
  }
}

describe('docker-compose.yml', () => {
  it('parses as the Compose subset Respawn uses, every service with an image or a build', () => {
    expect(services.map(([n]) => n).sort()).toEqual(
      ['actors', 'arm-fake', 'gateway', 'migrate', 'nats', 'postgres', 'redis'].sort(),
    );
  });

  it.each(ours)('%s builds from an existing Dockerfile stage', (_, s) => {
    const build = s.build!;
    expect(existsInRepo(build.context)).toBe(true);
    expect(existsInRepo(build.dockerfile)).toBe(true);
    const stages = dockerStages(build.dockerfile).map((st) => st.name);
    expect(stages).toContain(build.target);
  });

  it('pins every third-party image to a version', () => {
    for (const [name, s] of services.filter(([, x]) => x.build === undefined)) {
      expect(s.image, name).toMatch(/^[a-z0-9./-]+:[0-9][\w.-]*$/);
    }
  });

  it('mounts only files that exist and volumes it declares', () => {
    const declared = Object.keys(compose.volumes ?? {});
    for (const [name, s] of services) {
      for (const v of s.volumes ?? []) {
        const source = v.split(':')[0] ?? '';
        if (source.startsWith('.')) expect(existsInRepo(source), `${name}: ${source}`).toBe(true);
        else expect(declared, `${name}: volume ${source}`).toContain(source);
      }
    }
  });

  it('keeps JetStream storage on the NATS volume', () => {
    const nats = compose.services.nats!;
    const conf = (nats.volumes ?? []).find((v) => v.endsWith('respawn.conf:ro'))!;
    const storeDir = /store_dir:\s*"([^"]+)"/.exec(readRepo(conf.split(':')[0]!))?.[1];
    const volumeTargets = (nats.volumes ?? [])
      .filter((v) => !v.startsWith('.'))
      .map((v) => v.split(':')[1]!);
    expect(storeDir).toBeDefined();
    expect(volumeTargets.some((t) => storeDir!.startsWith(`${t}/`))).toBe(true);
    expect(nats.command).toEqual(['-c', conf.split(':')[1], '-m', '8222']);
  });

  it.each(ours)('%s runs an entry point that exists and is in its image', (_, s) => {
    const entry = entryPoint(s);
    expect(entry, 'command is node --import tsx <file>').toBeDefined();
    expect(existsInRepo(entry!)).toBe(true);
    const copied = copiedInto(dockerStages(s.build!.dockerfile), s.build!.target!);
    expect(copied.some((c) => entry!.startsWith(`${c}/`))).toBe(true);
  });

  it('sets only variables the code reads (or the third-party image documents)', () => {
    const sources = productSources();
    const unread: string[] = [];
    for (const [name, s] of services) {
      const known = s.image === undefined ? undefined : IMAGE_VARIABLES[s.image];
      for (const key of Object.keys(s.environment ?? {})) {
        if (s.build === undefined) {
          if (!(known ?? []).includes(key)) unread.push(`${name}: ${key}`);
        } else if (readersOf(key, sources).length === 0) unread.push(`${name}: ${key}`);
      }
    }
    expect(unread).toEqual([]);
  });

  it('interpolates only variables the code reads', () => {
    const sources = productSources();
    const names = [...readRepo('docker-compose.yml').matchAll(INTERPOLATION)].map((m) => m[1]!);
    expect(names.length).toBeGreaterThan(0);
    for (const n of names) expect(readersOf(n, sources), n).not.toEqual([]);
  });

  it('sets values the processes accept (interpolations at their defaults)', () => {
    const resolved = (s: ComposeService): Record<string, string | undefined> =>
      Object.fromEntries(
        Object.entries(s.environment ?? {}).map(([k, v]) => [
          k,
          v === null ? undefined : v.replace(/\$\{[A-Z0-9_]+:-([^}]*)\}/g, '$1'),
        ]),
      );
    for (const [name, s] of services) {
      if (role(s) === 'worker') {
        expect(WorkerConfigSchema.safeParse(resolved(s)).error, name).toBeUndefined();
      }
      if (role(s) === 'gateway') {
        // The two secrets come from the shell; placeholders stand in for them.
        const e = { ...resolved(s), TELEGRAM_BOT_TOKEN: '1:x', RAZORPAY_WEBHOOK_SECRET: 's' };
        expect(GatewayEnvSchema.safeParse(e).error, name).toBeUndefined();
      }
    }
  });

  it('leaves secrets to the environment: no value written for any of them', () => {
    const gw = compose.services.gateway!.environment ?? {};
    for (const k of Object.keys(gw).filter((x) => /TOKEN|SECRET/.test(x))) {
      expect(gw[k], k).toBeNull();
    }
  });

  it('probes /healthz on the port each process listens on, and publishes that port', () => {
    for (const [name, s] of ours.filter(([, x]) => role(x) !== 'other')) {
      const port = listenPort(s);
      expect(s.healthcheck?.test.join(' '), name).toContain(`http://127.0.0.1:${port}/healthz`);
      for (const p of s.ports ?? []) expect(p.split(':').at(-1), name).toBe(String(port));
    }
    const nats = compose.services.nats!;
    expect(nats.healthcheck?.test.join(' ')).toContain('http://127.0.0.1:8222/healthz');
    const natsPort = /^port:\s*(\d+)/m.exec(readRepo('deploy/nats/respawn.conf'))?.[1];
    expect(nats.ports?.map((p) => p.split(':').at(-1))).toEqual([natsPort]);
  });

  it('waits only for services that exist, healthy only where a health check is defined', () => {
    for (const [name, s] of services) {
      for (const [dep, { condition }] of Object.entries(s.depends_on ?? {})) {
        const target = compose.services[dep];
        expect(target, `${name} → ${dep}`).toBeDefined();
        if (condition === 'service_healthy')
          expect(target!.healthcheck, `${name} → ${dep}`).toBeDefined();
      }
    }
  });

  it('migrates from exactly one worker, which the others and the gateway wait for', () => {
    const workers = services.filter(([, s]) => role(s) === 'worker');
    const migrating = workers.filter(
      ([, s]) => WorkerConfigSchema.shape.RESPAWN_MIGRATE.parse(env(s).RESPAWN_MIGRATE) === true,
    );
    expect(migrating.map(([n]) => n)).toEqual(['migrate']);
    expect(compose.services.migrate!.deploy?.replicas ?? 1).toBe(1);
    // The migrator hosts the same kinds, so it applies every hosted actor's migrations.
    const kinds = (s: ComposeService): unknown =>
      WorkerConfigSchema.shape.RESPAWN_ACTORS.parse(env(s).RESPAWN_ACTORS);
    for (const [name, s] of workers)
      expect(kinds(s), name).toEqual(kinds(compose.services.migrate!));
    for (const name of ['actors', 'gateway']) {
      expect(compose.services[name]!.depends_on?.migrate?.condition).toBe('service_healthy');
    }
  });

  it('puts the fakes behind the `fakes` profile and nothing else', () => {
    const profiled = services.filter(([, s]) => s.profiles !== undefined);
    expect(profiled.map(([n]) => n)).toEqual(['arm-fake']);
    expect(compose.services['arm-fake']!.profiles).toEqual(['fakes']);
    expect(compose.services['arm-fake']!.build?.target).toBe('fakes');
  });
});
