export { createSessionActor, sessionActor } from './actor.ts';
export {
  SessionState,
  defaultSessionConfig,
  initialSessionState,
  type SessionConfig,
} from './state.ts';
export {
  SessionConfigError,
  loadSessionTimings,
  sessionEnvShape,
  sessionTimings,
  timingProblems,
  type SessionTimings,
} from './config.ts';
