/**
 * deploy/k8s/ (kustomize) is valid Kubernetes and names only what exists. No cluster runs
 * here, so every manifest is parsed (js-yaml), each object is validated with the OpenAPI
 * schemas of `kubernetes-models` (types, required fields, formats such as quantities) plus a
 * check for fields the API does not define (which those schemas let through), and project
 * checks hold them to the code: every variable is one a configuration loader reads (secrets as
 * `<NAME>_FILE` of a mounted Secret), the whole environment passes the real loaders, probes
 * hit the paths and ports the processes serve, commands run entry points that exist.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Service } from 'kubernetes-models/v1/Service';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { loadBillingConfig } from '../../actors/billing/config.ts';
import { WorkerConfigSchema, loadWorkerConfig } from '../../actors/config.ts';
import { SECRET_VARIABLES } from '../../contracts/secrets.ts';
import { GatewayEnvSchema, loadGatewayEnv } from '../../gateway/config.ts';
import { loadRazorpayApiConfig } from '../../gateway/razorpay/config.ts';
import { existsInRepo, readRepo, repoPath } from './support.ts';

// js-yaml has no types here (test/deploy/support.ts keeps it behind the same interface).
const yaml = createRequire(import.meta.url)('js-yaml') as {
  load(text: string): unknown;
  loadAll(text: string): unknown[];
};

const K8S = 'deploy/k8s';
type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const obj = (v: unknown): Obj => (isObj(v) ? v : {});
const list = (v: unknown): Obj[] => (Array.isArray(v) ? v.filter(isObj) : []);
const str = (v: unknown): string => (typeof v === 'string' ? v : '');

// --- kustomize: the tree of kustomizations, their resources and patches ---------------------

interface Manifest {
  file: string;
  object: Obj;
}

interface Kustomization {
  dir: string;
  doc: Obj;
}

function kustomizations(dir: string, seen: Kustomization[] = []): Kustomization[] {
  const doc = obj(yaml.load(readRepo(`${dir}/kustomization.yaml`)));
  seen.push({ dir, doc });
  for (const r of (doc.resources as unknown[] | undefined) ?? []) {
    const rel = path.posix.join(dir, str(r));
    if (existsInRepo(rel) && statSync(repoPath(rel)).isDirectory()) kustomizations(rel, seen);
  }
  return seen;
}

const TREE = kustomizations(K8S);

/** Every object of the resources (not patches) the tree names, in order. */
function resources(): Manifest[] {
  const out: Manifest[] = [];
  for (const k of TREE) {
    for (const r of (k.doc.resources as unknown[] | undefined) ?? []) {
      const rel = path.posix.join(k.dir, str(r));
      if (!existsInRepo(rel) || statSync(repoPath(rel)).isDirectory()) continue;
      for (const o of yaml.loadAll(readRepo(rel))) if (isObj(o)) out.push({ file: rel, object: o });
    }
  }
  return out;
}

function patches(): Manifest[] {
  const out: Manifest[] = [];
  for (const k of TREE) {
    for (const p of list(k.doc.patches)) {
      const rel = path.posix.join(k.dir, str(p.path));
      for (const o of yaml.loadAll(readRepo(rel))) if (isObj(o)) out.push({ file: rel, object: o });
    }
  }
  return out;
}

const kindName = (o: Obj): string => `${str(o.kind)}/${str(obj(o.metadata).name)}`;

/** The strategic merge of the site's ConfigMap patches (a ConfigMap's data merges key by key). */
function applied(objects: Manifest[], over: Manifest[]): Obj[] {
  const out = objects.map((m) => structuredClone(m.object));
  for (const p of over) {
    const target = out.find((o) => kindName(o) === kindName(p.object));
    if (target === undefined) continue;
    target.data = { ...obj(target.data), ...obj(p.object.data) };
  }
  return out;
}

// --- schema validation: kubernetes-models, and no field the API does not define ------------

interface Validating {
  validate(): void;
}
const MODELS: Record<string, (o: Obj) => Validating> = {
  'v1/ConfigMap': (o) => new ConfigMap(o),
  'v1/Namespace': (o) => new Namespace(o),
  'v1/Service': (o) => new Service(o),
  'apps/v1/Deployment': (o) => new Deployment(o),
  'batch/v1/Job': (o) => new Job(o),
  'policy/v1/PodDisruptionBudget': (o) => new PodDisruptionBudget(o),
};
const MODEL_TYPES: Record<string, string> = {
  'v1/ConfigMap': 'kubernetes-models/v1/ConfigMap.d.ts',
  'v1/Namespace': 'kubernetes-models/v1/Namespace.d.ts',
  'v1/Service': 'kubernetes-models/v1/Service.d.ts',
  'apps/v1/Deployment': 'kubernetes-models/apps/v1/Deployment.d.ts',
  'batch/v1/Job': 'kubernetes-models/batch/v1/Job.d.ts',
  'policy/v1/PodDisruptionBudget': 'kubernetes-models/policy/v1/PodDisruptionBudget.d.ts',
};

/** The model's validation error, or undefined when the object is valid. */
function schemaError(o: Obj): string | undefined {
  const type = `${str(o.apiVersion)}/${str(o.kind)}`;
  const model = MODELS[type];
  if (model === undefined) return `no schema for ${type}`;
  try {
    model(o).validate();
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

interface Shape {
  /** Property name → the interface file describing its value (or its array's items), if any. */
  props: Map<string, string | undefined>;
}
const shapes = new Map<string, Shape | undefined>();

/** The properties an interface of kubernetes-models declares, read from its .d.ts. */
function shapeOf(file: string): Shape | undefined {
  if (shapes.has(file)) return shapes.get(file);
  const text = readFileSync(file, 'utf8');
  const imports = new Map<string, string>();
  for (const m of text.matchAll(/^import \{ (\w+) \} from "([^"]+)";$/gm)) {
    const spec = m[2]!;
    const base = spec.startsWith('.')
      ? path.resolve(path.dirname(file), spec)
      : repoPath(`node_modules/${spec}`);
    imports.set(m[1]!, `${base.replace(/\.js$/, '')}.d.ts`);
  }
  const body = /^export interface \w+(?: extends [\w, ]+)? \{\n([\s\S]*?)^\}/m.exec(text)?.[1];
  if (body === undefined) {
    shapes.set(file, undefined);
    return undefined;
  }
  const props = new Map<string, string | undefined>();
  for (const m of body.matchAll(/^ {4}"([^"]+)"\??: (.+)$/gm)) {
    const ref = /^(?:Array<)?(I\w+)>?;$/.exec(m[2]!)?.[1];
    props.set(m[1]!, ref === undefined ? undefined : imports.get(ref));
  }
  if (/extends TypeMeta/.test(text))
    for (const k of ['apiVersion', 'kind']) props.set(k, undefined);
  const shape = { props };
  shapes.set(file, shape);
  return shape;
}

/** Paths of fields the API does not define (kubectl --validate=strict refuses them). */
function unknownFields(o: Obj): string[] {
  const type = `${str(o.apiVersion)}/${str(o.kind)}`;
  const root = MODEL_TYPES[type];
  if (root === undefined) return [`no schema for ${type}`];
  const out: string[] = [];
  const walk = (value: unknown, file: string, at: string): void => {
    const shape = shapeOf(file);
    if (shape === undefined) return;
    const items = Array.isArray(value) ? value : [value];
    items.forEach((item, i) => {
      if (!isObj(item)) return;
      const here = Array.isArray(value) ? `${at}[${i}]` : at;
      for (const [k, v] of Object.entries(item)) {
        if (!shape.props.has(k)) out.push(`${here}.${k}`);
        else {
          const next = shape.props.get(k);
          if (next !== undefined) walk(v, next, `${here}.${k}`);
        }
      }
    });
  };
  walk(o, repoPath(`node_modules/${root}`), kindName(o));
  return out;
}

// --- project checks -------------------------------------------------------------------------

type Role = 'gateway' | 'worker';
const ENTRY: Record<string, Role> = { 'gateway/main.ts': 'gateway', 'actors/main.ts': 'worker' };

/** The variables each role's configuration loaders read (their schemas' keys). */
const BILLING_VARIABLES = [
  ...readRepo('actors/billing/config.ts').matchAll(/\b(RESPAWN_BILLING_\w+):/g),
].map((m) => m[1]!);
const RAZORPAY_VARIABLES = [
  ...readRepo('gateway/razorpay/config.ts').matchAll(/\b(RAZORPAY_\w+):/g),
].map((m) => m[1]!);
const READS: Record<Role, Set<string>> = {
  worker: new Set([...Object.keys(WorkerConfigSchema.shape), ...BILLING_VARIABLES]),
  gateway: new Set([...Object.keys(GatewayEnvSchema.shape), ...RAZORPAY_VARIABLES]),
};
/** Where each role serves /healthz and /readyz. */
const HTTP_CODE: Record<Role, string> = {
  gateway: 'gateway/http/health.ts',
  worker: 'actors/http.ts',
};

interface Container {
  owner: Obj;
  pod: Obj;
  container: Obj;
}

function containers(objects: Obj[]): Container[] {
  return objects
    .filter((o) => o.kind === 'Deployment' || o.kind === 'Job')
    .flatMap((o) => {
      const pod = obj(obj(obj(o.spec).template).spec);
      return list(pod.containers).map((container) => ({ owner: o, pod, container }));
    });
}

/** A container's command without Node's own `--name=value` flags (a worker's heap limit). */
const commandOf = (c: Obj): unknown[] =>
  ((c.command as unknown[] | undefined) ?? []).filter(
    (w, i) => i === 0 || !/^--[a-z0-9-]+=/.test(str(w)),
  );

const roleOf = (c: Obj): Role | undefined => {
  const cmd = commandOf(c);
  return ENTRY[str(cmd[3])];
};

/** The container's environment: its ConfigMaps' data, then its own `env` (which wins). */
function environment(c: Obj, objects: Obj[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const from of list(c.envFrom)) {
    const name = str(obj(from.configMapRef).name);
    const cm = objects.find((o) => o.kind === 'ConfigMap' && obj(o.metadata).name === name);
    for (const [k, v] of Object.entries(obj(cm?.data))) env[k] = str(v);
  }
  for (const e of list(c.env)) env[str(e.name)] = str(e.value);
  return env;
}

/** The mounted Secret volumes of a pod: mount path → Secret name. */
function secretMounts(pod: Obj, c: Obj): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of list(c.volumeMounts)) {
    const vol = list(pod.volumes).find((v) => v.name === m.name);
    const secret = str(obj(vol?.secret).secretName);
    if (secret !== '' && m.readOnly === true) out.set(str(m.mountPath), secret);
  }
  return out;
}

const portOf = (c: Obj, port: unknown): number | undefined =>
  typeof port === 'number'
    ? port
    : (list(c.ports).find((p) => p.name === port)?.containerPort as number | undefined);

/** Everything that ties the manifests to the code; one line per problem. */
function projectProblems(objects: Obj[]): string[] {
  const problems: string[] = [];
  const secretFiles = new Map<string, Set<string>>();
  for (const { owner, pod, container: c } of containers(objects)) {
    const where = `${kindName(owner)} ${str(c.name)}`;
    const cmd = commandOf(c);
    const role = roleOf(c);
    if (cmd.slice(0, 3).join(' ') !== 'node --import tsx' || role === undefined) {
      problems.push(`${where}: command is not node --import tsx <gateway|actors>/main.ts`);
      continue;
    }
    if (!existsInRepo(str(cmd[3]))) problems.push(`${where}: ${str(cmd[3])} does not exist`);
    if (c.image !== 'respawn') problems.push(`${where}: image is not the kustomize name respawn`);
    for (const from of list(c.envFrom)) {
      const name = str(obj(from.configMapRef).name);
      if (!objects.some((o) => o.kind === 'ConfigMap' && obj(o.metadata).name === name))
        problems.push(`${where}: no ConfigMap ${name}`);
    }
    const env = environment(c, objects);
    const mounts = secretMounts(pod, c);
    for (const [name, value] of Object.entries(env)) {
      const base = name.endsWith('_FILE') ? name.slice(0, -'_FILE'.length) : undefined;
      if (base !== undefined && (SECRET_VARIABLES as readonly string[]).includes(base)) {
        if (!READS[role].has(base)) problems.push(`${where}: ${base} is not read by the ${role}`);
        const dir = path.posix.dirname(value);
        const secret = mounts.get(dir);
        if (secret === undefined)
          problems.push(`${where}: ${name} is not a file of a read-only Secret mount`);
        else
          secretFiles.set(
            secret,
            (secretFiles.get(secret) ?? new Set()).add(path.posix.basename(value)),
          );
      } else if (!READS[role].has(name)) {
        problems.push(`${where}: ${name} is not read by the ${role}'s configuration loaders`);
      }
      if ((SECRET_VARIABLES as readonly string[]).includes(name))
        problems.push(`${where}: secret ${name} given as a value (use ${name}_FILE)`);
    }
    const port =
      role === 'gateway'
        ? GatewayEnvSchema.shape.GATEWAY_PORT.parse(env.GATEWAY_PORT)
        : WorkerConfigSchema.shape.RESPAWN_HTTP_PORT.parse(env.RESPAWN_HTTP_PORT);
    const code = readRepo(HTTP_CODE[role]);
    if (owner.kind === 'Deployment') {
      for (const [probe, want] of [
        ['livenessProbe', '/healthz'],
        ['startupProbe', '/healthz'],
        ['readinessProbe', '/readyz'],
      ] as const) {
        const get = obj(obj(c[probe]).httpGet);
        if (get.path !== want) problems.push(`${where}: ${probe} is not GET ${want}`);
        if (portOf(c, get.port) !== port)
          problems.push(`${where}: ${probe} port is not ${port}, where the ${role} listens`);
        if (!code.includes(`'${want}'`))
          problems.push(`${where}: ${HTTP_CODE[role]} serves no ${want}`);
      }
    }
    const res = obj(c.resources);
    for (const k of ['requests', 'limits'])
      for (const r of ['cpu', 'memory'])
        if (obj(res[k])[r] === undefined) problems.push(`${where}: no ${k}.${r}`);
    const podSec = obj(pod.securityContext);
    const sec = obj(c.securityContext);
    if (
      podSec.runAsNonRoot !== true ||
      typeof podSec.runAsUser !== 'number' ||
      podSec.runAsUser === 0
    )
      problems.push(`${where}: the pod may run as root`);
    if (sec.allowPrivilegeEscalation !== false) problems.push(`${where}: privilege escalation`);
    if (JSON.stringify(obj(sec.capabilities).drop) !== '["ALL"]')
      problems.push(`${where}: capabilities not all dropped`);
    if (
      sec.readOnlyRootFilesystem === true &&
      !list(c.volumeMounts).some((m) => m.mountPath === '/tmp')
    )
      problems.push(`${where}: read-only root without a writable /tmp (tsx caches there)`);
  }
  for (const o of objects.filter((x) => x.kind === 'PodDisruptionBudget' || x.kind === 'Service')) {
    const sel = obj(
      o.kind === 'Service' ? obj(o.spec).selector : obj(obj(o.spec).selector).matchLabels,
    );
    const matches = objects.filter(
      (d) =>
        d.kind === 'Deployment' &&
        Object.entries(sel).every(
          ([k, v]) =>
            obj(obj(obj(d.spec).template).metadata).labels !== undefined &&
            obj(obj(obj(obj(d.spec).template).metadata).labels)[k] === v,
        ),
    );
    if (matches.length !== 1)
      problems.push(`${kindName(o)}: selects ${matches.length} Deployments`);
    if (o.kind === 'Service') {
      for (const p of list(obj(o.spec).ports)) {
        const c = list(obj(obj(obj(matches[0]?.spec).template).spec).containers)[0] ?? {};
        if (portOf(c, p.targetPort) === undefined)
          problems.push(`${kindName(o)}: targetPort ${String(p.targetPort)} is no container port`);
      }
    }
  }
  for (const [secret, files] of secretFiles) {
    const documented = SECRET_KEYS.get(secret);
    if (documented === undefined) problems.push(`Secret ${secret}: README.md does not create it`);
    else
      for (const f of files)
        if (!documented.has(f))
          problems.push(`Secret ${secret}: README.md does not create key ${f}`);
  }
  return problems;
}

/** The Secrets deploy/k8s/README.md tells the operator to create, with their keys. */
const SECRET_KEYS = new Map<string, Set<string>>(
  [
    ...readRepo(`${K8S}/README.md`)
      .replace(/\\\n\s*/g, ' ')
      .matchAll(/kubectl(?: -n \S+)? create secret generic ([\w-]+)([^\n]*)/g),
  ].map((m) => [m[1]!, new Set([...m[2]!.matchAll(/--from-file=([\w-]+)=/g)].map((k) => k[1]!))]),
);

// --- the tests --------------------------------------------------------------------------------

const RESOURCES = resources();
const PATCHES = patches();
const OBJECTS = applied(RESOURCES, PATCHES);

describe('deploy/k8s kustomization', () => {
  it('names only files that exist: resources, patches', () => {
    for (const k of TREE) {
      for (const r of [
        ...((k.doc.resources as unknown[] | undefined) ?? []).map(str),
        ...list(k.doc.patches).map((p) => str(p.path)),
      ]) {
        const rel = path.posix.join(k.dir, r);
        expect(existsInRepo(rel), rel).toBe(true);
        if (statSync(repoPath(rel)).isDirectory())
          expect(existsInRepo(`${rel}/kustomization.yaml`), rel).toBe(true);
      }
    }
    expect(TREE.map((k) => k.dir)).toEqual([K8S, `${K8S}/base`]);
  });

  it('has no manifest that no kustomization uses', () => {
    const used = new Set([...RESOURCES, ...PATCHES].map((m) => m.file));
    const walk = (dir: string): string[] =>
      readdirSync(repoPath(dir)).flatMap((f) => {
        const rel = `${dir}/${f}`;
        return statSync(repoPath(rel)).isDirectory() ? walk(rel) : [rel];
      });
    const manifests = walk(K8S).filter(
      (f) =>
        f.endsWith('.yaml') && !f.endsWith('kustomization.yaml') && !f.startsWith(`${K8S}/nats/`),
    );
    expect(manifests.filter((f) => !used.has(f))).toEqual([]);
  });

  it('patches only ConfigMaps the base defines (the merge this test applies)', () => {
    const names = new Set(RESOURCES.map((m) => kindName(m.object)));
    for (const p of PATCHES) {
      expect(p.object.kind, p.file).toBe('ConfigMap');
      expect(names, p.file).toContain(kindName(p.object));
    }
  });

  it('runs every Respawn container as the restricted Pod Security Standard asks', () => {
    for (const { owner, pod, container: c } of containers(OBJECTS)) {
      expect(obj(obj(pod.securityContext).seccompProfile).type, kindName(owner)).toBe(
        'RuntimeDefault',
      );
      expect(pod.automountServiceAccountToken, kindName(owner)).toBe(false);
      expect(obj(c.securityContext).readOnlyRootFilesystem, kindName(owner)).toBe(true);
    }
    // The Dockerfile's user is the one the pods run as.
    expect(readRepo('deploy/Dockerfile')).toMatch(/^USER node$/m);
    for (const { pod } of containers(OBJECTS))
      expect(obj(pod.securityContext).runAsUser).toBe(1000);
  });

  it('sets the one image the Dockerfile builds, by its kustomize name', () => {
    const images = list(TREE[0]!.doc.images);
    expect(images.map((i) => i.name)).toEqual(['respawn']);
    const used = new Set(containers(OBJECTS).map((c) => c.container.image));
    expect([...used]).toEqual(['respawn']);
  });

  it('has the objects a deployment needs', () => {
    expect(OBJECTS.map(kindName).sort()).toEqual(
      [
        'ConfigMap/respawn-actors',
        'ConfigMap/respawn-gateway',
        'Deployment/respawn-actors',
        'Deployment/respawn-gateway',
        'Deployment/respawn-telegram-sender',
        'Job/respawn-migrate',
        'Namespace/respawn',
        'PodDisruptionBudget/respawn-actors',
        'PodDisruptionBudget/respawn-gateway',
        'Service/respawn-gateway',
      ].sort(),
    );
  });
});

describe('deploy/k8s objects against the Kubernetes API schemas', () => {
  it.each([...RESOURCES, ...PATCHES].map((m) => [`${m.file}: ${kindName(m.object)}`, m.object]))(
    '%s is valid',
    (_, o) => {
      expect(schemaError(o)).toBeUndefined();
      expect(unknownFields(o)).toEqual([]);
    },
  );

  const actors = (): Obj =>
    structuredClone(
      RESOURCES.find((m) => kindName(m.object) === 'Deployment/respawn-actors')!.object,
    );
  const firstContainer = (d: Obj): Obj => list(obj(obj(obj(d.spec).template).spec).containers)[0]!;

  it('refuses a broken Deployment: wrong types, missing fields, bad quantities', () => {
    const replicas = actors();
    obj(replicas.spec).replicas = 'two';
    expect(schemaError(replicas)).toContain('replicas must be integer');

    const probe = actors();
    firstContainer(probe).livenessProbe = { httpGet: { path: '/healthz' } };
    expect(schemaError(probe)).toContain('must have required property port');

    const quantity = actors();
    obj(obj(firstContainer(quantity).resources).limits).memory = 'a lot';
    expect(schemaError(quantity)).toContain('quantity');

    const noSelector = actors();
    delete obj(noSelector.spec).selector;
    expect(schemaError(noSelector)).toContain('must have required property selector');
  });

  it('refuses a field the API does not define (a misspelt key)', () => {
    const typo = actors();
    const c = firstContainer(typo);
    c.readinesProbe = c.readinessProbe;
    delete c.readinessProbe;
    expect(unknownFields(typo)).toEqual([
      'Deployment/respawn-actors.spec.template.spec.containers[0].readinesProbe',
    ]);
  });
});

describe('deploy/k8s against the code', () => {
  const tmp = mkdtempSync(path.join(tmpdir(), 'respawn-k8s-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('names only variables, entry points, probe paths and ports the code has', () => {
    expect(projectProblems(OBJECTS)).toEqual([]);
  });

  it('runs the gateway and the workers with probes, and migrates in a Job only', () => {
    const byName = (n: string): Obj | undefined => OBJECTS.find((o) => kindName(o) === n);
    const env = (n: string): Record<string, string> =>
      environment(containers([byName(n)!])[0]!.container, OBJECTS);
    expect(env('Job/respawn-migrate').RESPAWN_MIGRATE_ONLY).toBe('true');
    expect(env('Deployment/respawn-actors').RESPAWN_MIGRATE).toBe('false');
    expect(env('Deployment/respawn-actors').RESPAWN_MIGRATE_ONLY).toBeUndefined();
    // The Job migrates every kind the workers host.
    expect(env('Job/respawn-migrate').RESPAWN_ACTORS).toBe(
      env('Deployment/respawn-actors').RESPAWN_ACTORS,
    );
    expect(obj(obj(obj(byName('Job/respawn-migrate')!.spec).template).spec).restartPolicy).toBe(
      'Never',
    );
  });

  it('sends Telegram messages from one Deployment whose two pods take turns (one sends, one stands by)', () => {
    const byName = (n: string): Obj => OBJECTS.find((o) => kindName(o) === n)!;
    const env = (n: string): Record<string, string> =>
      environment(containers([byName(n)])[0]!.container, OBJECTS);
    const senders = OBJECTS.filter(
      (o) =>
        o.kind === 'Deployment' &&
        containers([o]).some(
          (c) =>
            commandOf(c.container).includes('gateway/main.ts') &&
            environment(c.container, OBJECTS).TELEGRAM_OUTBOUND !== 'false',
        ),
    );
    expect(senders.map(kindName)).toEqual(['Deployment/respawn-telegram-sender']);
    const spec = obj(byName('Deployment/respawn-telegram-sender').spec);
    // The lease (gateway/telegram/leased-sender.ts) lets one send at a time, so a standby is safe,
    // and so is an upgrade that starts the new pod before stopping the old.
    expect(spec.replicas).toBe(2);
    expect(obj(obj(spec.strategy).rollingUpdate).maxUnavailable).toBe(0);
    expect(env('Deployment/respawn-gateway').TELEGRAM_OUTBOUND).toBe('false');
  });

  it('gives each process an environment its real configuration loader accepts', () => {
    // The mounted Secrets' files, with placeholder values of the right shape.
    const placeholder: Record<string, string> = {
      'database-url': 'postgres://respawn:pw@postgres:5432/respawn',
      'nats-password': 'nPlaceholderPassword1234',
      'azure-client-secret': 'placeholder',
      'telegram-bot-token': '123456:placeholder',
      'telegram-webhook-secret': 'placeholder_secret',
      'razorpay-webhook-secret': 'placeholder',
      'razorpay-key-secret': 'placeholder-key-secret',
      'agent-token-secret': 'p'.repeat(32),
    };
    for (const { owner, container: c } of containers(OBJECTS)) {
      const env = environment(c, OBJECTS);
      for (const [k, v] of Object.entries(env)) {
        if (!k.endsWith('_FILE')) continue;
        const file = path.join(tmp, path.posix.basename(v));
        writeFileSync(file, `${placeholder[path.posix.basename(v)] ?? ''}\n`);
        env[k] = file;
      }
      const where = kindName(owner);
      if (roleOf(c) === 'worker') {
        expect(() => loadWorkerConfig(env), where).not.toThrow();
        expect(() => loadBillingConfig(env), where).not.toThrow();
      } else {
        expect(() => loadGatewayEnv(env), where).not.toThrow();
        expect(() => loadRazorpayApiConfig(env), where).not.toThrow();
      }
    }
  });

  const gateway = (): Obj[] => OBJECTS.map((o) => structuredClone(o));
  const gatewayContainer = (objects: Obj[]): Obj =>
    containers(objects.filter((o) => kindName(o) === 'Deployment/respawn-gateway'))[0]!.container;

  it('fails on a variable no loader reads, a secret given as a value, a wrong probe', () => {
    const unknown = gateway();
    (gatewayContainer(unknown).env as Obj[]).push({ name: 'GATEWAY_PROT', value: '8080' });
    expect(projectProblems(unknown)).toContain(
      "Deployment/respawn-gateway gateway: GATEWAY_PROT is not read by the gateway's configuration loaders",
    );

    const plain = gateway();
    (gatewayContainer(plain).env as Obj[]).push({ name: 'TELEGRAM_BOT_TOKEN', value: '1:x' });
    expect(projectProblems(plain)).toContain(
      'Deployment/respawn-gateway gateway: secret TELEGRAM_BOT_TOKEN given as a value (use TELEGRAM_BOT_TOKEN_FILE)',
    );

    const port = gateway();
    obj(obj(gatewayContainer(port).readinessProbe).httpGet).port = 9464;
    expect(projectProblems(port)).toContain(
      'Deployment/respawn-gateway gateway: readinessProbe port is not 8080, where the gateway listens',
    );

    const path = gateway();
    obj(obj(gatewayContainer(path).livenessProbe).httpGet).path = '/health';
    expect(projectProblems(path)).toContain(
      'Deployment/respawn-gateway gateway: livenessProbe is not GET /healthz',
    );
  });

  it('fails on an entry point that does not exist and a secret file outside the Secret', () => {
    const entry = gateway();
    gatewayContainer(entry).command = ['node', '--import', 'tsx', 'gateway/server.ts'];
    expect(projectProblems(entry)).toContain(
      'Deployment/respawn-gateway gateway: command is not node --import tsx <gateway|actors>/main.ts',
    );
    const file = gateway();
    list(gatewayContainer(file).env).find((e) => e.name === 'TELEGRAM_BOT_TOKEN_FILE')!.value =
      '/etc/telegram-bot-token';
    expect(projectProblems(file)).toContain(
      'Deployment/respawn-gateway gateway: TELEGRAM_BOT_TOKEN_FILE is not a file of a read-only Secret mount',
    );
  });
});

describe('deploy/k8s/nats/values.yaml (the official NATS Helm chart)', () => {
  const values = obj(yaml.load(readRepo(`${K8S}/nats/values.yaml`)));
  const config = obj(values.config);

  it('runs a three-node cluster with JetStream on persistent volumes', () => {
    expect(obj(config.cluster)).toMatchObject({ enabled: true, replicas: 3 });
    expect(obj(config.jetstream).enabled).toBe(true);
    expect(obj(obj(obj(config.jetstream).fileStore).pvc).size).toMatch(/^\d+Gi$/);
    // Workers create the streams with as many replicas as the cluster has nodes.
    const cm = OBJECTS.find((o) => kindName(o) === 'ConfigMap/respawn-actors')!;
    expect(Number(obj(cm.data).RESPAWN_STREAM_REPLICAS)).toBe(obj(config.cluster).replicas);
  });

  it('includes the subject mappings and the users from deploy/nats/, added by --set-file', () => {
    const includes = Object.entries(obj(config.merge))
      .filter(([k]) => k.endsWith('$include'))
      .map(([, v]) => str(v));
    expect(includes.sort()).toEqual(['auth.conf', 'respawn-mappings.conf']);
    const command = readRepo(`${K8S}/README.md`).replace(/\\\n\s*/g, ' ');
    for (const name of includes) {
      const m = new RegExp(
        `--set-file '?configMap\\.merge\\.data\\.${name.replace('.', '\\\\\\.')}=([^'\\s]+)`,
      ).exec(command);
      expect(m, name).not.toBeNull();
      expect(existsInRepo(m![1]!), m![1]).toBe(true);
      expect(m![1]!.startsWith('deploy/nats/'), m![1]).toBe(true);
    }
    // The mappings file is the cluster's, which carries respawn.conf's mappings.
    expect(command).toContain('respawn-mappings\\.conf=deploy/nats/cluster/mappings.conf');
  });

  it('gives the server every password variable deploy/nats/auth.conf reads, from a Secret', () => {
    const wanted = new Set(
      [...readRepo('deploy/nats/auth.conf').matchAll(/\$(RESPAWN_NATS_\w+_PASSWORD)\b/g)].map(
        (m) => m[1]!,
      ),
    );
    expect(wanted.size).toBeGreaterThan(0);
    const env = obj(obj(values.container).env);
    expect(Object.keys(env).sort()).toEqual([...wanted].sort());
    for (const [k, v] of Object.entries(env)) {
      expect(obj(obj(obj(v).valueFrom).secretKeyRef).name, k).toBe('respawn-nats-users');
    }
    // Each process connects as its own user.
    const users = [...readRepo('deploy/nats/auth.conf').matchAll(/^\s*user: (\w+)$/gm)].map(
      (m) => m[1],
    );
    for (const cm of OBJECTS.filter((o) => o.kind === 'ConfigMap'))
      expect(users, kindName(cm)).toContain(obj(cm.data).NATS_USER);
  });
});
