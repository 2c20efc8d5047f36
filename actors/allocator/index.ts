export { allocatorActor, createAllocatorActor } from './actor.ts';
export { freeCores, pickCandidate, reservedCores, vmNameFor } from './place.ts';
export {
  AllocState,
  defaultAllocatorConfig,
  initialAllocState,
  type AllocatorConfig,
  type Candidate,
} from './state.ts';
export {
  AllocatorConfigError,
  allocatorEnvShape,
  allocatorSettings,
  loadAllocatorSettings,
  type AllocatorSettings,
} from './config.ts';
