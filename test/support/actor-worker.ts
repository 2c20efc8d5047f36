/**
 * A started runtime worker hosting the given product actors in a runtime env: their command
 * streams and partition consumers ensured, the worker on the system clock unless a test
 * drives its own. What the session integration tests each built by hand.
 */
import { ensureTopology, type ActorKind } from '../../contracts/index.ts';
import {
  createWorker,
  systemClock,
  type ActorDefinition,
  type Clock,
  type Worker,
} from '../../actors/runtime/index.ts';
import type { RuntimeEnv } from './runtime-env.ts';

/** An actor definition of any state and message types (the worker erases them). */
export interface AnyActor {
  readonly kind: ActorKind;
}

export async function startActorWorker(
  env: RuntimeEnv,
  actors: readonly AnyActor[],
  opts: { clock?: Clock; timerPollMs?: number } = {},
): Promise<Worker> {
  await ensureTopology(env.jsm, { consumersFor: actors.map((a) => a.kind) });
  const worker = createWorker({
    nc: env.nc,
    db: env.db,
    log: env.log,
    clock: opts.clock ?? systemClock,
    ...(opts.timerPollMs === undefined ? {} : { timerPollMs: opts.timerPollMs }),
    actors: actors as readonly ActorDefinition[],
  });
  await worker.start();
  return worker;
}
