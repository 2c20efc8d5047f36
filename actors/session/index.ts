export { createSessionActor, sessionActor } from './actor.ts';
export {
  SessionState,
  defaultSessionConfig,
  initialSessionState,
  type SessionConfig,
} from './state.ts';
