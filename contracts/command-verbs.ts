/**
 * Which verb each command travels on, from the catalog: `session.start.v1` only on
 * `respawn.session.<player>.cmd.start`. The runtime refuses a command whose payload type does
 * not belong to the verb of its subject, so a publisher allowed one verb (NATS permissions are
 * per subject) cannot send another command through it, and an operator reading
 * `cmd.<verb>` reads what the verb says.
 */
import { Catalog } from './catalog.ts';
import type { ActorKind } from './subjects.ts';

let byKindAndType: Map<string, ReadonlySet<string>> | undefined;

const pair = (kind: string, type: string): string => `${kind} ${type}`;

function build(): Map<string, ReadonlySet<string>> {
  const out = new Map<string, Set<string>>();
  for (const e of Catalog) {
    for (const r of e.routes) {
      const t = r.channel.split('.');
      if (t.length !== 5 || t[3] !== 'cmd') continue;
      const k = pair(t[1]!, e.type);
      const verbs = out.get(k) ?? new Set<string>();
      verbs.add(t[4]!);
      out.set(k, verbs);
    }
  }
  return out;
}

/** The verbs a command of `type` to a `kind` actor travels on; undefined: none catalogued. */
export function commandVerbs(kind: ActorKind, type: string): ReadonlySet<string> | undefined {
  byKindAndType ??= build();
  return byKindAndType.get(pair(kind, type));
}
