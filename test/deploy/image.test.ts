/**
 * deploy/Dockerfile makes one image that can run both processes: production dependencies
 * only (plus tsx, which runs the TypeScript sources), every file the entry points load
 * copied in, a non-root user, a health check on /healthz.
 */
import { readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { describe, expect, it } from 'vitest';
import {
  copiedInto,
  dockerStages,
  importGraph,
  packageName,
  repoPath,
  type DockerStage,
} from './support.ts';

const stages = dockerStages();
const stage = (name: string): DockerStage => {
  const s = stages.find((x) => x.name === name);
  if (s === undefined) throw new Error(`no stage ${name}`);
  return s;
};
const pkg = JSON.parse(readFileSync(repoPath('package.json'), 'utf8')) as {
  dependencies: Record<string, string>;
};
/** tsx and its dependencies: copied into the production tree by name (Dockerfile). */
const RUNTIME_DEV = ['tsx', 'esbuild', '@esbuild'];

const ENTRIES: Record<string, readonly string[]> = {
  app: ['gateway/main.ts', 'actors/main.ts'],
  fakes: ['deploy/fakes/arm/main.ts'],
};

describe('deploy/Dockerfile', () => {
  it('builds the app (gateway and actors) by default: it is the last stage', () => {
    expect(stages.at(-1)?.name).toBe('app');
  });

  it('installs production dependencies only, from the lock file', () => {
    const installs = stages.flatMap((s) =>
      s.lines.filter((l) => /\bnpm\b/.test(l)).map((l) => [s.name, l]),
    );
    expect(installs).toEqual([
      ['deps-all', 'RUN npm ci --no-audit --no-fund'],
      ['deps-prod', 'RUN npm ci --omit=dev --no-audit --no-fund'],
    ]);
    const fromAll = stages.flatMap((s) =>
      s.lines.filter((l) => l.startsWith('COPY --from=deps-all')).map((l) => l.split(/\s+/)[2]),
    );
    expect(fromAll).toEqual(RUNTIME_DEV.map((p) => `/app/node_modules/${p}`));
    expect(stage('base').lines).toContain('COPY --from=deps-prod /app/node_modules ./node_modules');
  });

  it('copies tsx with every package it needs (per the lock file)', () => {
    type Entry = {
      dependencies?: Record<string, string>;
      optionalDependencies?: Record<string, string>;
    };
    const lock = JSON.parse(readFileSync(repoPath('package-lock.json'), 'utf8')) as {
      packages: Record<string, Entry>;
    };
    const needed = new Set<string>();
    const visit = (name: string): void => {
      if (needed.has(name)) return;
      needed.add(name);
      const entry = lock.packages[`node_modules/${name}`];
      if (entry === undefined) throw new Error(`${name} is not in package-lock.json`);
      const deps = { ...entry.dependencies, ...entry.optionalDependencies };
      // fsevents is tsx's macOS-only optional dependency.
      for (const dep of Object.keys(deps)) if (dep !== 'fsevents') visit(dep);
    };
    visit('tsx');
    // esbuild's platform binaries are all under @esbuild/, copied as one directory.
    const dirs = new Set([...needed].map((n) => (n.startsWith('@esbuild/') ? '@esbuild' : n)));
    expect([...dirs].sort()).toEqual([...RUNTIME_DEV].sort());
  });

  it.each(['app', 'fakes'])('runs the %s target as a non-root user', (name) => {
    const users = stage(name).lines.filter((l) => l.startsWith('USER '));
    expect(users.at(-1)).toBe('USER node');
  });

  it('checks /healthz on the gateway or worker port, whichever role runs', () => {
    const hc = stage('app').lines.find((l) => l.startsWith('HEALTHCHECK'));
    expect(hc).toContain("includes('gateway/main.ts')");
    expect(hc).toContain('process.env.GATEWAY_PORT||8080');
    expect(hc).toContain('process.env.RESPAWN_HTTP_PORT||9464');
    expect(hc).toContain("'/healthz'");
  });

  it.each(Object.entries(ENTRIES))(
    'the %s target holds every file its entry points load, and only run-time packages',
    (target, entries) => {
      const copied = copiedInto(stages, target);
      const graph = importGraph(entries);
      const missing = [...graph.files].filter((f) => !copied.some((c) => f.startsWith(`${c}/`)));
      expect(missing).toEqual([]);
      const builtins = new Set(builtinModules);
      const notInstalled = [...graph.packages]
        .filter((p) => !p.startsWith('node:') && !builtins.has(p))
        .map(packageName)
        .filter((p) => pkg.dependencies[p] === undefined);
      expect(notInstalled).toEqual([]);
      expect(graph.files.size).toBeGreaterThan(entries.length);
    },
  );

  it('keeps the fakes out of the default image', () => {
    expect(copiedInto(stages, 'app').some((c) => c.startsWith('deploy'))).toBe(false);
  });
});
