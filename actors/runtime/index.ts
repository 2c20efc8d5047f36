/** The public face of the actor runtime. */
export {
  defineActor,
  emit,
  type ActorDefinition,
  type ActorMigration,
  type Emission,
  type Persist,
  type PersistRecord,
  type Handler,
  type HandlerContext,
  type HandlerResult,
  type TimerMessage,
  type TimerOp,
} from './actor.ts';
export { manualClock, offsetClock, systemClock, type Clock, type ManualClock } from './clock.ts';
export { migrate, openDatabase, type Database, type DatabaseOptions } from './db.ts';
export { MappingMissingError, checkPartitionMapping } from './probe.ts';
export { backoffDelay, type Backoff } from './settle.ts';
export { StaleStateError, type Outcome, type Prepared } from './store.ts';
export { createWorker, type Worker, type WorkerOptions } from './worker.ts';
export { listDeadLetters, reinjectDeadLetter, type DeadLetter } from './dlq.ts';
export { deadLetterCounter, type DeadLetterCounter } from './metrics.ts';
