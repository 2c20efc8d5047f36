/**
 * What the property tests share: paths into JSON values (to replace one), the timers an actor
 * set (to fire them as the runtime would, in any order), and reading back what a handler
 * emitted through the catalog, as its consumer would.
 */
import fc from 'fast-check';
import { Catalog, type MessageDef } from '../../contracts/index.ts';
import type { TimerOp } from '../../actors/runtime/index.ts';

export type JsonPath = (string | number)[];

/** One step of a sequence test: a message of `def`, sent `advanceMs` after the step before. */
export interface MessageStep {
  kind: 'msg';
  def: MessageDef;
  value: unknown;
  advanceMs: number;
}

/** Message steps of `def` with values from `value`, drawn `weight` times as often as weight 1. */
export function messageSteps(
  def: MessageDef,
  value: fc.Arbitrary<unknown>,
  advance: fc.Arbitrary<number>,
  weight = 1,
): fc.WeightedArbitrary<MessageStep> {
  return {
    weight,
    arbitrary: fc.record({
      kind: fc.constant('msg' as const),
      def: fc.constant(def),
      value,
      advanceMs: advance,
    }),
  };
}

/** Every path into a JSON value: the value itself, each object's keys, each array's indexes. */
export function pathsOf(v: unknown, at: JsonPath = []): JsonPath[] {
  if (v === null || typeof v !== 'object') return [at];
  const keys: (string | number)[] = Array.isArray(v) ? v.map((_, i) => i) : Object.keys(v);
  return [at, ...keys.flatMap((k) => pathsOf((v as Record<string, unknown>)[k], [...at, k]))];
}

/** `v` with the value at `path` replaced by `by`, or removed when `by` is undefined. */
export function replaced(v: unknown, path: JsonPath, by: unknown): unknown {
  if (path.length === 0) return by;
  const copy = structuredClone(v) as Record<string | number, unknown>;
  let parent = copy;
  for (const k of path.slice(0, -1)) parent = parent[k] as Record<string | number, unknown>;
  const last = path[path.length - 1]!;
  if (by === undefined) delete parent[last];
  else parent[last] = by;
  return copy;
}

const decoders = new Map(
  Catalog.map((e) => [
    e.type,
    (d: Uint8Array): unknown => e.schema.parse(JSON.parse(new TextDecoder().decode(d))),
  ]),
);

/** An emitted message read as its consumer reads it; throws for a type the catalog lacks. */
export function decodeEmitted(e: { type: string; data: Uint8Array }): unknown {
  const decode = decoders.get(e.type);
  if (decode === undefined) throw new Error(`${e.type} is not in the catalog`);
  return decode(e.data);
}

/** The timers an actor set and did not cancel, by name (a name set again replaces it). */
export class SetTimers {
  private readonly pending = new Map<string, { at: number; data?: unknown }>();

  apply(ops: readonly TimerOp[] | undefined): void {
    for (const t of ops ?? []) {
      if ('cancel' in t) this.pending.delete(t.name);
      else
        this.pending.set(t.name, {
          at: t.at.getTime(),
          ...(t.data === undefined ? {} : { data: t.data }),
        });
    }
  }

  /**
   * Fires the `pick`-th pending timer (by due time; of those `only` takes) at `now`, or when
   * it is due if later: the `runtime.timer.v1` it is delivered as, and that moment. Undefined
   * when none is set.
   */
  fire(
    pick: number,
    now: number,
    only: (name: string) => boolean = () => true,
  ): { value: unknown; at: number } | undefined {
    const due = [...this.pending].filter(([n]) => only(n)).sort((a, b) => a[1].at - b[1].at);
    if (due.length === 0) return undefined;
    const [name, t] = due[pick % due.length]!;
    this.pending.delete(name);
    const at = Math.max(now, t.at);
    return {
      at,
      value: {
        timerId: '1',
        name,
        dueAt: new Date(t.at).toISOString(),
        firedAt: new Date(at).toISOString(),
        ...(t.data === undefined ? {} : { data: t.data }),
      },
    };
  }
}
