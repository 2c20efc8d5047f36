/**
 * What the deployment tests share: the repository's files, docker-compose.yml parsed (YAML
 * anchors and merge keys resolved) into the subset of the Compose specification Respawn uses,
 * the Dockerfile's stages, and where the product code reads a variable or imports a package.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { z } from 'zod';

export const ROOT = path.resolve(import.meta.dirname, '../..');

export const repoPath = (rel: string): string => path.resolve(ROOT, rel);
export const readRepo = (rel: string): string => readFileSync(repoPath(rel), 'utf8');
export const existsInRepo = (rel: string): boolean => existsSync(repoPath(rel));

// js-yaml is in node_modules (a dependency of other packages) but not declared and has no
// types: keep it behind this interface.
const yaml = createRequire(import.meta.url)('js-yaml') as { load(text: string): unknown };

const StringList = z.array(z.string());
const Env = z.record(z.string(), z.union([z.string(), z.null()]));

const Healthcheck = z
  .object({
    test: StringList,
    interval: z.string().optional(),
    timeout: z.string().optional(),
    retries: z.number().int().optional(),
    start_period: z.string().optional(),
  })
  .strict();

const Build = z
  .object({ context: z.string(), dockerfile: z.string(), target: z.string().optional() })
  .strict();

/** The keys of a Compose service Respawn uses; an unknown (misspelt) key fails the parse. */
const Service = z
  .object({
    image: z.string().optional(),
    build: Build.optional(),
    command: StringList.optional(),
    environment: Env.optional(),
    volumes: StringList.optional(),
    ports: StringList.optional(),
    healthcheck: Healthcheck.optional(),
    depends_on: z
      .record(
        z.string(),
        z
          .object({
            condition: z.enum([
              'service_started',
              'service_healthy',
              'service_completed_successfully',
            ]),
          })
          .strict(),
      )
      .optional(),
    profiles: StringList.optional(),
    deploy: z
      .object({ replicas: z.number().int().min(1) })
      .strict()
      .optional(),
    stop_grace_period: z.string().optional(),
  })
  .strict()
  .refine((s) => s.image !== undefined || s.build !== undefined, 'needs an image or a build');
export type ComposeService = z.infer<typeof Service>;

export const ComposeFile = z
  .object({
    name: z.string(),
    services: z.record(z.string(), Service),
    volumes: z.record(z.string(), z.null()).optional(),
  })
  // Top-level `x-` keys are Compose extensions (here: YAML anchors).
  .catchall(z.unknown())
  .refine(
    (f) =>
      Object.keys(f).every(
        (k) => ['name', 'services', 'volumes'].includes(k) || k.startsWith('x-'),
      ),
    'unknown top-level key',
  );
export type Compose = z.infer<typeof ComposeFile>;

export function loadCompose(): Compose {
  return ComposeFile.parse(yaml.load(readRepo('docker-compose.yml')));
}

/** `${NAME}`, `${NAME:-default}`: Compose interpolation left in place (the parse keeps it). */
export const INTERPOLATION = /\$\{([A-Z0-9_]+)(?::?[-?][^}]*)?\}/g;

export interface DockerStage {
  name: string;
  from: string;
  /** Repository paths copied from the build context (not `--from=` another stage). */
  copies: string[];
  lines: string[];
}

/** The Dockerfile's stages in order (the last one is what a build without --target makes). */
export function dockerStages(rel = 'deploy/Dockerfile'): DockerStage[] {
  const text = readRepo(rel).replace(/\\\n/g, ' ');
  const stages: DockerStage[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const from = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/i.exec(line);
    if (from !== null) {
      stages.push({ name: from[2] ?? '', from: from[1] ?? '', copies: [], lines: [] });
      continue;
    }
    const stage = stages.at(-1);
    if (stage === undefined) continue;
    stage.lines.push(line);
    const copy = /^COPY\s+(?!--from)(?:--\S+\s+)*(.+)\s+\S+$/i.exec(line);
    if (copy !== null) stage.copies.push(...(copy[1] ?? '').split(/\s+/));
  }
  return stages;
}

/** A stage's own copies plus those of the stages it is built FROM. */
export function copiedInto(stages: readonly DockerStage[], name: string): string[] {
  const stage = stages.find((s) => s.name === name);
  if (stage === undefined) throw new Error(`no stage ${name}`);
  return [
    ...stage.copies,
    ...(stages.some((s) => s.name === stage.from) ? copiedInto(stages, stage.from) : []),
  ];
}

function walk(dir: string, out: string[]): string[] {
  for (const entry of readdirSync(dir)) {
    const full = path.join(dir, entry);
    if (statSync(full).isDirectory()) walk(full, out);
    else if (entry.endsWith('.ts') && !entry.endsWith('.test.ts')) out.push(full);
  }
  return out;
}

/** The product's TypeScript sources (tests excluded): where a variable is really read. */
export function productSources(): Map<string, string> {
  const files = ['actors', 'gateway', 'contracts', 'deploy'].flatMap((d) => walk(repoPath(d), []));
  return new Map(files.map((f) => [path.relative(ROOT, f), readFileSync(f, 'utf8')]));
}

/** Files of `sources` that mention `name` as a whole word outside comments. */
export function readersOf(name: string, sources: Map<string, string>): string[] {
  const word = new RegExp(`(^|[^A-Za-z0-9_])${name}([^A-Za-z0-9_]|$)`);
  const readers: string[] = [];
  for (const [file, text] of sources) {
    const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:])\/\/.*$/gm, '$1');
    if (word.test(code)) readers.push(file);
  }
  return readers;
}

export interface ImportGraph {
  /** Repository files reached, relative to the root. */
  files: Set<string>;
  /** Bare specifiers imported for their values (type-only imports are erased by tsx). */
  packages: Set<string>;
}

const IMPORT = /^\s*(?:import|export)\s+(type\s+)?(?:[^'";]*?\s+from\s+)?['"]([^'"]+)['"]/gm;
/** `import('x')` and `createRequire(import.meta.url)('x')`: loaded at run time all the same. */
const DYNAMIC = /(?:\bimport|createRequire\([^)]*\))\(\s*['"]([^'"]+)['"]\s*\)/g;

/** Follows the value imports of `entries`, as the process would load them. */
export function importGraph(entries: readonly string[]): ImportGraph {
  const files = new Set<string>();
  const packages = new Set<string>();
  const queue = [...entries];
  for (let rel = queue.pop(); rel !== undefined; rel = queue.pop()) {
    if (files.has(rel)) continue;
    files.add(rel);
    for (const m of readRepo(rel).matchAll(IMPORT)) {
      const typeOnly = m[1] !== undefined;
      const spec = m[2] ?? '';
      if (typeOnly) continue;
      if (spec.startsWith('.'))
        queue.push(path.relative(ROOT, path.resolve(path.dirname(repoPath(rel)), spec)));
      else packages.add(spec);
    }
    for (const m of readRepo(rel).matchAll(DYNAMIC)) {
      const spec = m[1] ?? '';
      if (spec.startsWith('.'))
        queue.push(path.relative(ROOT, path.resolve(path.dirname(repoPath(rel)), spec)));
      else packages.add(spec);
    }
  }
  return { files, packages };
}

/** `grammy/types` → `grammy`, `@azure/identity/x` → `@azure/identity`. */
export function packageName(spec: string): string {
  const parts = spec.split('/');
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? spec);
}
