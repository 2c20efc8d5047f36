/** The simulated VM agent fleet: what `npm start` and tests run next to the ARM fake. */
export {
  AGENT_TOKEN_HEADER,
  SESSION_PURPOSE,
  STREAM_PORT,
  createAgentSim,
  type AgentSim,
  type AgentSimOptions,
  type AgentSimSource,
  type AgentView,
} from './sim.ts';
