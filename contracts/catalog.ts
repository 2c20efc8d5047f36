/**
 * Who sends what where: for every message definition, the subjects it travels on (as AsyncAPI
 * channel addresses with `{parameters}`), the stream that stores it, and the components that
 * publish and consume it. The AsyncAPI document (`npm run asyncapi`) is generated from this
 * table; a test fails when a message definition exported by contracts/index.ts is missing.
 */
import type { z } from 'zod';
import { AgentReport } from './agent.ts';
import {
  AllocCreateResult,
  AllocDecided,
  AllocDeleteResult,
  AllocDiskDecided,
  AllocDiskRound,
  AllocInventory,
  AllocRelease,
  AllocRequest,
  AllocUsage,
  AllocDrain,
  AllocVerbs,
  AzureArchiveDisk,
  AzureCreateVm,
  AzureDeleteVm,
  AzureReconcileDisks,
  AzureRefresh,
  DiskDecisions,
} from './allocator.ts';
import {
  BillingAdjust,
  BillingAdmit,
  BillingBalance,
  BillingRegister,
  BillingRegistered,
  BillingEvents,
  BillingHistory,
  BillingLinkStatus,
  BillingMeterClose,
  BillingMeterOpen,
  BillingMeterPause,
  BillingMeterResume,
  BillingPaymentEvent,
  BillingPaymentHeld,
  BillingPaymentLinkCreated,
  BillingPaymentLinkFailed,
  BillingTopup,
  BillingVerbs,
  SessionAdmission,
} from './billing.ts';
import { DemoAdd, DemoAdded, DemoFail, DemoRemind, DemoReminded, DemoVerbs } from './demo.ts';
import type { MessageDef } from './message.ts';
import { TelegramSend } from './out.ts';
import { RazorpayCreateLink, RazorpayFetchLink, RazorpayWebhook } from './razorpay.ts';
import { TIMER_VERB, TimerFired } from './runtime.ts';
import {
  SessionAgentReady,
  SessionAllocFailed,
  SessionAllocated,
  SessionChanged,
  SessionDiskArchived,
  SessionDiskFound,
  SessionDiskMissing,
  SessionHeartbeat,
  SessionPhases,
  SessionPreempt,
  SessionQueued,
  SessionStart,
  SessionSettings,
  SessionStatus,
  SessionStop,
  SessionVerbs,
  SessionVmCheck,
  SessionVmReleased,
} from './session.ts';
import { Streams, commandStreamName } from './streams.ts';
import { ActorKinds, IngressSources, ROOT, type ActorKind } from './subjects.ts';
import { TelegramUpdateSchema } from './telegram.ts';

/** The processes (or parts of one) that publish and consume on the bus. */
export const Components = {
  gateway: 'gateway',
  telegramRouter: 'telegram-router',
  agentRouter: 'agent-router',
  razorpayRouter: 'razorpay-router',
  session: 'session',
  billing: 'billing',
  alloc: 'alloc',
  azureEffects: 'azure-effects',
  razorpayEffects: 'razorpay-effects',
  telegramSender: 'telegram-sender',
  /** The actor runtime's durable-timer sweeper (in every worker). */
  runtime: 'runtime',
  /** The runtime's demo actor (tests, benchmark, sandbox). */
  demo: 'demo',
  operators: 'operators',
  /** A support tool, a game launcher, a load generator: anything outside Respawn. */
  otherServices: 'other-services',
} as const;
export type Component = (typeof Components)[keyof typeof Components];

/** One subject pattern a message travels on. */
export interface CatalogRoute {
  /** AsyncAPI channel address, e.g. `respawn.session.{playerId}.cmd.stop`. */
  readonly channel: string;
  /** Parameters of the address that take only these values (the others are any token). */
  readonly enums?: Readonly<Record<string, readonly string[]>>;
  readonly stream: string;
  readonly publishers: readonly Component[];
  readonly consumers: readonly Component[];
}

export interface CatalogEntry {
  /** The name contracts/index.ts exports it by. */
  readonly name: string;
  readonly type: string;
  readonly schema: z.ZodType;
  readonly summary: string;
  readonly routes: readonly CatalogRoute[];
}

/** What each channel parameter is, and the token rule every subject builder enforces. */
export const ChannelParameters: Readonly<Record<string, string>> = {
  playerId: "The player's id (their Telegram user id)",
  region: 'An Azure region, e.g. centralindia',
  chatId: 'A Telegram chat id',
  key: 'The demo actor key',
  phase: 'The session phase entered, or `status` for an answer to a status request',
  decision: 'What the allocator decided',
  origin: 'Where the dead letter came from: an actor kind, an ingress source, gateway or razorpay',
  code: 'The error code (contracts/errors.ts, plus `unroutable` from the Razorpay router)',
};

const S = Components;
const keyParam: Record<ActorKind, string> = {
  session: 'playerId',
  billing: 'playerId',
  alloc: 'region',
  demo: 'key',
};

function cmd(
  kind: ActorKind,
  verb: string,
  publishers: readonly Component[],
  consumers: readonly Component[] = [kind === 'alloc' ? S.alloc : kind],
): CatalogRoute {
  return {
    channel: `${ROOT}.${kind}.{${keyParam[kind]}}.cmd.${verb}`,
    stream: commandStreamName(kind),
    publishers,
    consumers,
  };
}

function evt(
  kind: ActorKind,
  event: string,
  consumers: readonly Component[],
  enums?: Record<string, readonly string[]>,
): CatalogRoute {
  return {
    channel: `${ROOT}.${kind}.{${keyParam[kind]}}.evt.${event}`,
    stream: Streams.events.name,
    publishers: [kind],
    consumers,
    ...(enums === undefined ? {} : { enums }),
  };
}

const route = (
  channel: string,
  stream: string,
  publishers: readonly Component[],
  consumers: readonly Component[],
): CatalogRoute => ({ channel, stream, publishers, consumers });

const outAzure = `${ROOT}.out.azure.{region}`;
const outRazorpay = `${ROOT}.out.razorpay`;
const outTelegram = `${ROOT}.out.telegram.{chatId}`;
const inbound = (source: string): string => `${ROOT}.in.${source}`;

function entry(
  name: string,
  def: MessageDef,
  summary: string,
  routes: readonly CatalogRoute[],
): CatalogEntry {
  return { name, type: def.type, schema: def.schema, summary, routes };
}

/** Every message definition contracts/index.ts exports, once. */
export const Catalog: readonly CatalogEntry[] = [
  // --- Session commands ---
  entry('SessionStart', SessionStart, 'Start a session for the player', [
    cmd('session', SessionVerbs.start, [S.telegramRouter, S.otherServices]),
  ]),
  entry('SessionStop', SessionStop, "Stop the player's session", [
    cmd('session', SessionVerbs.stop, [S.telegramRouter, S.billing, S.otherServices]),
  ]),
  entry('SessionStatus', SessionStatus, 'Ask for the session state (answered on evt.status)', [
    cmd('session', SessionVerbs.status, [S.telegramRouter, S.otherServices]),
  ]),
  entry('SessionSettings', SessionSettings, "The player's tier policy: set, or told", [
    cmd('session', SessionVerbs.settings, [S.telegramRouter]),
  ]),
  entry('SessionAdmission', SessionAdmission, "Billing's answer to billing.admit.v1", [
    cmd('session', SessionVerbs.admission, [S.billing]),
  ]),
  entry('SessionAllocated', SessionAllocated, 'A VM of this tier and price is being created', [
    cmd('session', SessionVerbs.allocated, [S.alloc]),
  ]),
  entry('SessionQueued', SessionQueued, 'No capacity anywhere; waiting in line', [
    cmd('session', SessionVerbs.queued, [S.alloc]),
  ]),
  entry('SessionAllocFailed', SessionAllocFailed, 'The allocation cannot be served', [
    cmd('session', SessionVerbs.allocFailed, [S.alloc]),
  ]),
  entry('SessionVmReleased', SessionVmReleased, "The session's VM is gone", [
    cmd('session', SessionVerbs.vmReleased, [S.alloc]),
  ]),
  entry('SessionVmCheck', SessionVmCheck, 'Does this session still own its running VM?', [
    cmd('session', SessionVerbs.vmCheck, [S.alloc]),
  ]),
  entry('SessionAgentReady', SessionAgentReady, 'The streaming host is up', [
    cmd('session', SessionVerbs.agentReady, [S.agentRouter]),
  ]),
  entry('SessionHeartbeat', SessionHeartbeat, 'The VM agent is alive; last player input', [
    cmd('session', SessionVerbs.heartbeat, [S.agentRouter]),
  ]),
  entry('SessionPreempt', SessionPreempt, 'Azure announced a Spot eviction', [
    cmd('session', SessionVerbs.preempt, [S.agentRouter]),
  ]),
  entry('SessionDiskArchived', SessionDiskArchived, "The player's unused disk was archived", [
    cmd('session', SessionVerbs.diskArchived, [S.azureEffects]),
  ]),
  entry('SessionDiskMissing', SessionDiskMissing, "The player's recorded disk is gone from Azure", [
    cmd('session', SessionVerbs.diskMissing, [S.azureEffects]),
  ]),
  entry('SessionDiskFound', SessionDiskFound, "Adopt the player's disk the state does not record", [
    cmd('session', SessionVerbs.diskFound, [S.azureEffects]),
  ]),
  // --- Session events ---
  entry('SessionChanged', SessionChanged, 'The session changed phase, or answered a status', [
    evt('session', '{phase}', [S.operators, S.otherServices], {
      phase: [...Object.values(SessionPhases), 'status'],
    }),
  ]),
  // --- Billing commands ---
  entry('BillingAdmit', BillingAdmit, 'May this player start?', [
    cmd('billing', BillingVerbs.admit, [S.session]),
  ]),
  entry('BillingMeterOpen', BillingMeterOpen, 'The VM is ready: meter from `at`', [
    cmd('billing', BillingVerbs.meterOpen, [S.session]),
  ]),
  entry('BillingMeterPause', BillingMeterPause, 'Evicted: charge nothing from `at`', [
    cmd('billing', BillingVerbs.meterPause, [S.session]),
  ]),
  entry('BillingMeterResume', BillingMeterResume, 'Ready again: charge from `at`', [
    cmd('billing', BillingVerbs.meterResume, [S.session]),
  ]),
  entry('BillingMeterClose', BillingMeterClose, 'The session ended at `at`', [
    cmd('billing', BillingVerbs.meterClose, [S.session]),
  ]),
  entry('BillingTopup', BillingTopup, 'Top up the wallet by this amount', [
    cmd('billing', BillingVerbs.topup, [S.telegramRouter]),
  ]),
  entry('BillingRegister', BillingRegister, "Open the player's account (on /start)", [
    cmd('billing', BillingVerbs.register, [S.telegramRouter]),
  ]),
  entry('BillingRegistered', BillingRegistered, "A player's account was opened", [
    evt('billing', BillingEvents.registered, [S.operators]),
  ]),
  entry('BillingBalance', BillingBalance, 'Show the balance in the chat', [
    cmd('billing', BillingVerbs.balance, [S.telegramRouter]),
  ]),
  entry('BillingHistory', BillingHistory, 'Show the ledger history in the chat', [
    cmd('billing', BillingVerbs.history, [S.telegramRouter]),
  ]),
  entry('BillingPaymentLinkCreated', BillingPaymentLinkCreated, 'The payment link exists', [
    cmd('billing', BillingVerbs.paymentLinkCreated, [S.razorpayEffects]),
  ]),
  entry('BillingPaymentLinkFailed', BillingPaymentLinkFailed, 'The link could not be created', [
    cmd('billing', BillingVerbs.paymentLinkFailed, [S.razorpayEffects]),
  ]),
  entry('BillingPaymentEvent', BillingPaymentEvent, 'A verified Razorpay webhook, reduced', [
    cmd('billing', BillingVerbs.paymentEvent, [S.razorpayRouter]),
  ]),
  entry('BillingLinkStatus', BillingLinkStatus, 'A payment link as fetched (reconciliation)', [
    cmd('billing', BillingVerbs.linkStatus, [S.razorpayEffects]),
  ]),
  entry('BillingAdjust', BillingAdjust, 'Credit or debit by hand (idempotent by adjustmentId)', [
    cmd('billing', BillingVerbs.adjust, [S.otherServices]),
  ]),
  // --- Billing events ---
  entry('BillingPaymentHeld', BillingPaymentHeld, 'A payment recorded but not credited', [
    evt('billing', BillingEvents.paymentHeld, [S.operators]),
  ]),
  // --- Allocator commands and events ---
  entry('AllocRequest', AllocRequest, 'Find a VM for this session', [
    cmd('alloc', AllocVerbs.request, [S.session]),
  ]),
  entry('AllocRelease', AllocRelease, 'The session no longer needs its VM', [
    cmd('alloc', AllocVerbs.release, [S.session]),
  ]),
  entry('AllocCreateResult', AllocCreateResult, 'How a VM create ended', [
    cmd('alloc', AllocVerbs.createResult, [S.azureEffects]),
  ]),
  entry('AllocDeleteResult', AllocDeleteResult, 'How a VM delete ended', [
    cmd('alloc', AllocVerbs.deleteResult, [S.azureEffects]),
  ]),
  entry('AllocUsage', AllocUsage, "The region's quota usage", [
    cmd('alloc', AllocVerbs.usage, [S.azureEffects]),
  ]),
  entry('AllocDrain', AllocDrain, 'Drain the region (no new VMs there) or undrain it', [
    cmd('alloc', AllocVerbs.drain, [S.otherServices]),
  ]),
  entry('AllocInventory', AllocInventory, 'The VMs Azure has in the region', [
    cmd('alloc', AllocVerbs.inventory, [S.azureEffects]),
  ]),
  entry('AllocDiskRound', AllocDiskRound, 'What a disk reconciliation round saw and did', [
    cmd('alloc', AllocVerbs.diskRound, [S.azureEffects]),
  ]),
  entry(
    'AllocDiskDecided',
    AllocDiskDecided,
    'A disk the reconciler repaired, adopted or reports',
    Object.values(DiskDecisions).map((d) =>
      route(
        `${ROOT}.alloc.{region}.evt.${d}`,
        Streams.events.name,
        [S.azureEffects],
        [S.operators],
      ),
    ),
  ),
  entry('AllocDecided', AllocDecided, 'What the allocator decided', [
    evt('alloc', '{decision}', [S.operators], {
      decision: ['reserved', 'queued', 'cold', 'warm', 'released', 'failed', 'orphan'],
    }),
  ]),
  // --- Effects ---
  entry('AzureCreateVm', AzureCreateVm, "Create this VM with the player's disk", [
    route(outAzure, Streams.out.name, [S.alloc], [S.azureEffects]),
  ]),
  entry('AzureDeleteVm', AzureDeleteVm, 'Delete this VM and its NIC (never the disk)', [
    route(outAzure, Streams.out.name, [S.alloc], [S.azureEffects]),
  ]),
  entry('AzureRefresh', AzureRefresh, 'Report quota usage and the VM inventory', [
    route(outAzure, Streams.out.name, [S.alloc], [S.azureEffects]),
  ]),
  entry('AzureReconcileDisks', AzureReconcileDisks, 'Run one disk reconciliation round', [
    route(outAzure, Streams.out.name, [S.alloc], [S.azureEffects]),
  ]),
  entry('AzureArchiveDisk', AzureArchiveDisk, "Snapshot, then delete the player's unused disk", [
    route(outAzure, Streams.out.name, [S.session], [S.azureEffects]),
  ]),
  entry('RazorpayCreateLink', RazorpayCreateLink, 'Create a payment link for a top-up', [
    route(outRazorpay, Streams.out.name, [S.billing], [S.razorpayEffects]),
  ]),
  entry('RazorpayFetchLink', RazorpayFetchLink, "Fetch a link's status and payments", [
    route(outRazorpay, Streams.out.name, [S.billing], [S.razorpayEffects]),
  ]),
  entry('TelegramSend', TelegramSend, 'Send (or edit) a message in a chat', [
    route(
      outTelegram,
      Streams.out.name,
      [S.session, S.billing, S.telegramRouter],
      [S.telegramSender],
    ),
  ]),
  // --- Ingress ---
  entry('AgentReport', AgentReport, "A VM agent's report, as authenticated by the gateway", [
    route(inbound(IngressSources.agent), Streams.ingress.name, [S.gateway], [S.agentRouter]),
  ]),
  // --- Runtime ---
  entry('TimerFired', TimerFired, 'A durable timer of this actor fired', [
    cmd('session', TIMER_VERB, [S.runtime]),
    cmd('billing', TIMER_VERB, [S.runtime]),
    cmd('alloc', TIMER_VERB, [S.runtime]),
    cmd('demo', TIMER_VERB, [S.runtime]),
  ]),
  // --- Demo actor ---
  entry('DemoAdd', DemoAdd, 'Add to the counter', [
    cmd(ActorKinds.demo, DemoVerbs.add, [S.otherServices]),
  ]),
  entry('DemoFail', DemoFail, 'Make the handler fail (tests)', [
    cmd(ActorKinds.demo, DemoVerbs.fail, [S.otherServices]),
  ]),
  entry('DemoRemind', DemoRemind, 'Set or cancel a durable timer', [
    cmd(ActorKinds.demo, DemoVerbs.remind, [S.otherServices]),
  ]),
  entry('DemoAdded', DemoAdded, 'An increment was applied', [evt('demo', 'added', [])]),
  entry('DemoReminded', DemoReminded, 'A reminder fired', [evt('demo', 'reminded', [])]),
];

/** Raw ingress: stored as received (not Respawn messages, so they carry no `type`). */
export interface RawCatalogEntry {
  readonly name: string;
  readonly title: string;
  readonly schema: z.ZodType;
  readonly summary: string;
  readonly route: CatalogRoute;
}

export const RawCatalog: readonly RawCatalogEntry[] = [
  {
    name: 'TelegramUpdate',
    title: 'Telegram update',
    schema: TelegramUpdateSchema,
    summary: 'A Telegram Bot API update (fields the bot reads; the rest is kept unread)',
    route: route(
      inbound(IngressSources.telegram),
      Streams.ingress.name,
      [S.gateway],
      [S.telegramRouter],
    ),
  },
  {
    name: 'RazorpayWebhook',
    title: 'Razorpay webhook',
    schema: RazorpayWebhook,
    summary: 'A Razorpay webhook body whose signature the gateway verified',
    route: route(
      inbound(IngressSources.razorpay),
      Streams.ingress.name,
      [S.gateway],
      [S.razorpayRouter],
    ),
  },
];

/** Dead letters: any original payload and headers, plus the `Respawn-Dlq-*` headers. */
export const DeadLetterRoute: CatalogRoute & {
  readonly enums: Readonly<Record<string, readonly string[]>>;
} = {
  channel: `${ROOT}.dlq.{origin}.{code}`,
  enums: {
    origin: [...Object.values(ActorKinds), ...Object.values(IngressSources), 'gateway'].filter(
      (v, i, all) => all.indexOf(v) === i,
    ),
  },
  stream: Streams.dlq.name,
  publishers: [
    S.session,
    S.billing,
    S.alloc,
    S.demo,
    S.azureEffects,
    S.telegramRouter,
    S.agentRouter,
    S.razorpayRouter,
    S.razorpayEffects,
    S.telegramSender,
  ],
  consumers: [S.operators],
};
