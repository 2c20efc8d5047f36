/** Every place that starts a worker starts it with deploy/worker-flags.ts's Node flags. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { WORKER_NODE_FLAGS } from '../../deploy/worker-flags.ts';

/** Each command line in `text` (JSON or YAML flow array) that runs actors/main.ts, as its words. */
function workerCommands(text: string): string[][] {
  return [...text.matchAll(/\[([^\]\n]*actors\/main\.ts[^\]\n]*)\]/g)].map((m) =>
    [...m[1]!.matchAll(/["']([^"']*)["']/g)].map((w) => w[1]!),
  );
}

describe('worker Node flags', () => {
  it.each([
    ['deploy/Dockerfile', 1],
    ['docker-compose.yml', 2],
    ['deploy/k8s/base/actors.yaml', 1],
    ['deploy/k8s/base/migrate-job.yaml', 1],
  ])('%s starts its workers with them', (file, count) => {
    const commands = workerCommands(readFileSync(file, 'utf8'));
    expect(commands).toHaveLength(count);
    for (const c of commands) {
      expect(c[0]).toBe('node');
      expect(c.slice(1, 1 + WORKER_NODE_FLAGS.length)).toEqual([...WORKER_NODE_FLAGS]);
    }
  });

  it('sets a heap limit', () => {
    expect(WORKER_NODE_FLAGS.some((f) => /^--max-old-space-size=\d+$/.test(f))).toBe(true);
  });
});
