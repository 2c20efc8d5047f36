/** The reference VM agent (docs/agent.md): what runs on a player's VM and reports to the gateway. */
export {
  AgentOutcomes,
  startAgent,
  type Agent,
  type AgentOptions,
  type AgentOutcome,
  type AgentView,
} from './agent.ts';
export {
  AgentConfigError,
  AgentEnv,
  agentOptions,
  loadAgentConfig,
  type AgentConfig,
} from './config.ts';
export { commandIdleSource, noIdleSource, tcpAnswers, type IdleSource } from './host.ts';
export {
  AgentBootstrapError,
  FAKE_VM_HEADER,
  IMDS_DEFAULT_URL,
  ImdsError,
  createImdsClient,
  type ImdsClient,
  type NicAddresses,
  type ScheduledEventsDocument,
} from './imds.ts';
export { AGENT_TOKEN_HEADER, SendOutcomes, type SendOutcome } from './reporter.ts';
