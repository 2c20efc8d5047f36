/**
 * The VM agent's entry: `node --import tsx deploy/agent/main.ts` (the VM image's service unit,
 * deploy/agent/respawn-agent.service). Configuration from the environment (deploy/agent/config.ts);
 * pino JSON on stdout. SIGTERM or SIGINT stops it gracefully.
 *
 * Exit codes: 0 stopped by a signal; 2 invalid configuration; 3 no usable bootstrap on this VM
 * (userData, network, PIN file); 4 the gateway refused the agent's reports (wrong token);
 * 1 anything else. The service unit restarts it after a pause, which reads userData afresh.
 */
import { pino, type Logger } from 'pino';
import { redactSecrets } from '../../contracts/index.ts';
import { AgentOutcomes, startAgent } from './agent.ts';
import { AgentConfigError, agentOptions, loadAgentConfig } from './config.ts';
import { AgentBootstrapError } from './imds.ts';

export function createAgentLogger(level: string): Logger {
  return pino({
    name: 'respawn-agent',
    level,
    formatters: { log: (o) => redactSecrets(o) as Record<string, unknown> },
    serializers: { err: (e: unknown) => redactSecrets(e) },
  });
}

async function main(): Promise<number> {
  let cfg;
  try {
    cfg = loadAgentConfig(process.env);
  } catch (err) {
    const boot = createAgentLogger('info');
    if (err instanceof AgentConfigError) boot.fatal(err.message);
    else boot.fatal({ err }, 'cannot start');
    return 2;
  }
  const log = createAgentLogger(cfg.LOG_LEVEL);
  // A signal during the bootstrap ends it too.
  const early = new AbortController();
  const onEarly = (): void => early.abort();
  process.once('SIGTERM', onEarly);
  process.once('SIGINT', onEarly);
  let agent;
  try {
    agent = await Promise.race([
      startAgent(agentOptions(cfg, log)),
      new Promise<never>((_, reject) =>
        early.signal.addEventListener('abort', () => reject(new Error('stopped by a signal'))),
      ),
    ]);
  } catch (err) {
    if (early.signal.aborted) {
      log.info('stopped before the bootstrap finished');
      return 0;
    }
    if (err instanceof AgentBootstrapError) {
      log.fatal({ reason: err.message }, 'no usable bootstrap on this VM');
      return 3;
    }
    log.fatal({ err }, 'agent failed to start');
    return 1;
  }
  process.off('SIGTERM', onEarly);
  process.off('SIGINT', onEarly);
  const running = agent;
  const onSignal = (signal: string): void => {
    log.info({ signal }, 'stopping');
    void running.stop();
  };
  process.once('SIGTERM', () => onSignal('SIGTERM'));
  process.once('SIGINT', () => onSignal('SIGINT'));
  const outcome = await running.finished;
  return outcome === AgentOutcomes.refused ? 4 : 0;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      createAgentLogger('info').fatal({ err }, 'agent failed');
      process.exit(1);
    },
  );
}
