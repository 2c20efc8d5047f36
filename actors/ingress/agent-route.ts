/**
 * Turns a VM agent's report (authenticated by the gateway, stored raw on `respawn.in.agent`)
 * into the session command it means. Pure: the router around it does the I/O.
 */
import {
  ActorKinds,
  AgentReport,
  ErrorCodes,
  SessionAgentReady,
  SessionHeartbeat,
  SessionPreempt,
  TerminalError,
  cmdSubject,
  sessionOfPlayer,
  vmOfSession,
} from '../../contracts/index.ts';

export interface RoutedCommand {
  subject: string;
  data: Uint8Array;
  msgId: string;
}

export function routeAgentReport(data: Uint8Array): RoutedCommand {
  const r = AgentReport.decode(data);
  // The gateway checked the VM's token; a report must not speak for another session or player.
  if (!vmOfSession(r.vmName, r.sessionId) || !sessionOfPlayer(r.sessionId, r.playerId)) {
    throw new TerminalError(
      ErrorCodes.invalidPayload,
      `report of VM ${r.vmName} names session ${r.sessionId} of player ${r.playerId}, which is not its own`,
    );
  }
  const base = { sessionId: r.sessionId, vmName: r.vmName };
  const to = (verb: string): string => cmdSubject(ActorKinds.session, r.playerId, verb);
  const msgId = `agent-${r.id}`;
  switch (r.kind) {
    case 'ready':
      if (r.host === undefined || r.port === undefined || r.pin === undefined) {
        throw new TerminalError(
          ErrorCodes.invalidPayload,
          'a ready report needs host, port and pin',
        );
      }
      return {
        subject: to('agent_ready'),
        msgId,
        data: SessionAgentReady.encode({ ...base, host: r.host, port: r.port, pin: r.pin }),
      };
    case 'heartbeat':
      return {
        subject: to('heartbeat'),
        msgId,
        data: SessionHeartbeat.encode({
          ...base,
          at: r.at,
          ...(r.lastInputAt === undefined ? {} : { lastInputAt: r.lastInputAt }),
        }),
      };
    case 'preempt':
      return {
        subject: to('preempt'),
        msgId,
        data: SessionPreempt.encode({
          ...base,
          eventId: r.eventId ?? r.id,
          at: r.at,
          ...(r.notBefore === undefined ? {} : { notBefore: r.notBefore }),
        }),
      };
  }
}
